"""The dashboard's pages on the server side (no browser): live folding, throttling,
selection, filters, and ``aiflow_nb.show``."""

from __future__ import annotations

import time

import panel as pn
import pytest

import aiflow_nb
from aiflow_nb.events.model import Event
from aiflow_nb.trace import Follower
from aiflow_viewer.run_page import RunPage
from aiflow_viewer.runs_page import RunsPage

from support.trace import MODEL, failing, fan_out, open_gate, traced, wait_for


def _labels(page: RunPage) -> list[str]:
    return list(page.table.value["label"])


def test_run_page_replays_then_follows_live_through_ticks() -> None:
    gate = f"p{time.time_ns()}"
    handle = traced.start(tag="page", gate=gate, fan=2)
    wait_for(lambda: aiflow_nb.attach(handle.run_id).status == "running", what="running")
    page = RunPage(handle.run_id)
    try:

        def ticked(pred):  # type: ignore[no-untyped-def]
            page.tick()
            return pred()

        follower = page.follower
        assert follower is not None
        wait_for(
            lambda: ticked(lambda: "chat" in _labels(page)),
            what=lambda: f"chat row (follower alive={follower.alive}, error={follower.error!r})",
        )
        assert "running" in page.header.object
        wait_for(lambda: ticked(lambda: "alpha" in page.live.object), what="live text")
        bar = next(iter(page._bars.values()))
        assert bar.max == 3 and bar.value >= 1  # chat's progress: 1 of 3 tokens so far
        open_gate(gate)
        handle.result(timeout=20)
        wait_for(
            lambda: ticked(lambda: "completed" in page.header.object and len(_labels(page)) == 7),
            what="all rows",
        )
        assert _labels(page)[:4] == ["traced", "flaky", "chat", "leaf ×2"]
        assert page.tree.status == "completed" and "<b>10</b>" in page.header.object
        flaky = page.table.value.set_index("label").loc["flaky", "key"]
        page.select(flaky)
        assert page.table.selection == [1]
        assert "simulated provider outage" in page.detail.object
        page.select(page.table.value.set_index("label").loc["chat", "key"])
        assert MODEL in page.detail.object and "alpha beta gamma" in page.live.object
        page.select(page.table.value.set_index("label").loc["leaf ×2", "key"])
        assert "2 completed" in page.detail.object
    finally:
        page.stop()
    assert page.follower is not None and not page.follower.alive


def test_redraws_are_throttled_while_running_bars_keep_growing() -> None:
    gate = f"t{time.time_ns()}"
    handle = fan_out.start(n=2, gate=gate)
    wait_for(
        lambda: (
            len([s for s in aiflow_nb.attach(handle.run_id).spans() if s.status == "completed"])
            == 1
        ),
        what="one leaf done",
    )
    page = RunPage(handle.run_id, follow=False)
    try:
        drawn = page._drawn_version
        page.tree.apply(
            Event(
                id="9999999999999-0",
                type="log",
                ts=time.time(),
                run_id=handle.run_id,
                data={"message": "x"},
            )
        )
        page.tick()  # right after a redraw: folded, not drawn yet
        assert page._drawn_version == drawn
        time.sleep(page.redraw_interval)
        page.tick()
        assert page._drawn_version == page.tree.version
        right = list(page.waterfall.source.data["right"])
        time.sleep(0.5)
        page.tick()  # nothing new: running bars grow, ended ones stay
        grown = page.waterfall.source.data["right"]
        running = page.waterfall.source.data["running"]
        assert [g > r for g, r, run in zip(grown, right, running, strict=True) if run] == [
            True,
            True,
        ]
        assert all(g == r for g, r, run in zip(grown, right, running, strict=True) if not run)
    finally:
        open_gate(gate)
        handle.result(timeout=10)


def test_show_embeds_a_run_page_and_rejects_unknown_runs() -> None:
    handle = failing.start(x=1)
    with pytest.raises(aiflow_nb.RunFailed):
        handle.result(timeout=10)
    layout = aiflow_nb.show(handle, follow=False)
    assert isinstance(layout, pn.Column)
    html = " ".join(str(getattr(o, "object", "")) for o in layout.select(pn.pane.HTML))
    assert handle.run_id in html and "failed" in html
    assert isinstance(aiflow_nb.show(handle.run_id, follow=False), pn.Column)
    with pytest.raises(aiflow_nb.RunNotFound):
        aiflow_nb.show("no-such-run")


def test_runs_page_filters_by_workflow_status_and_time_and_sees_new_runs() -> None:
    ok = traced.start(tag="rp", fan=1)
    ok.result(timeout=20)
    bad = failing.start(x=2)
    with pytest.raises(aiflow_nb.RunFailed):
        bad.result(timeout=10)
    page = RunsPage()
    table = page.table.value.set_index("run_id")
    assert list(table.index) == [bad.run_id, ok.run_id]
    assert table.loc[ok.run_id, ["spans", "retries", "errors", "tokens"]].tolist() == [5, 1, 0, 10]
    assert table.loc[ok.run_id, "cost"] == pytest.approx(0.0021)
    assert table.loc[bad.run_id, ["status", "errors"]].tolist() == ["failed", 2]
    assert set(page.workflow.options) == {"any", "traced", "trace_failing"}
    page.workflow.value = "traced"
    assert list(page.table.value["run_id"]) == [ok.run_id]
    page.workflow.value, page.status.value = "any", "failed"
    assert list(page.table.value["run_id"]) == [bad.run_id]
    page.status.value, page.window.value = "any", "last 15 minutes"
    assert len(page.table.value) == 2
    newer = traced.start(tag="rp2", fan=1)
    page.refresh()
    assert page.table.value["run_id"].iloc[0] == newer.run_id
    newer.result(timeout=20)


def test_follower_stops_promptly_on_an_idle_run() -> None:
    gate = f"f{time.time_ns()}"
    handle = fan_out.start(n=1, gate=gate)
    follower = Follower(handle.run_id, block_ms=5000).start()
    try:
        wait_for(lambda: follower.pending() >= 2, what="replayed events")
        t0 = time.monotonic()
        follower.stop()
        assert time.monotonic() - t0 < 1.0 and not follower.alive
        assert [e.type for e in follower.drain()][:2] == ["run.queued", "run.started"]
    finally:
        open_gate(gate)
        handle.result(timeout=10)


def test_follower_reports_why_it_stopped() -> None:
    follower = Follower("no-such-run").start()
    wait_for(lambda: not follower.alive, what="follower ended")
    assert isinstance(follower.error, aiflow_nb.RunNotFound)


@aiflow_nb.component
def viewer_big(n: int, pad: str) -> str:
    return "r" * n


@aiflow_nb.workflow
def viewer_big_wf(n: int, pad: str) -> int:
    return len(viewer_big(n, pad))


def test_span_detail_reads_a_large_result_from_the_journal_and_previews_a_large_argument() -> None:
    from aiflow_nb.ops.local import ensure_local_worker

    ensure_local_worker(force=True)
    pad = "p" * 40_000  # over the inline size: the step's span.started only previews it
    handle = viewer_big_wf.start(n=30_000, pad=pad)
    assert handle.result(timeout=30) == 30_000
    page = RunPage(handle.run_id, follow=False)
    page.select(page.table.value.set_index("label").loc["viewer_big", "key"])
    html = page.detail.object
    assert "r" * 19_000 in html  # the result, read from the journal (shown up to 20,000 chars)
    assert "bytes of JSON; the start:" in html and "p" * 400 in html and pad not in html


@aiflow_nb.component
def _page_double(x: int) -> int:
    return x * 2


@aiflow_nb.component
def _page_label(y: int) -> str:
    return f"y={y}"


@aiflow_nb.workflow(name="page_rerun_chain")
def _page_rerun_chain(x: int) -> str:
    return _page_label(_page_double(x))


def test_a_reruns_page_names_its_source_links_the_compare_page_and_shows_what_it_saved() -> None:
    first = _page_rerun_chain.start(x=2)
    assert first.result(timeout=20) == "y=4"
    second = aiflow_nb.rerun(first, steps=["_page_label"])
    second.result(timeout=20)
    page = RunPage(second.run_id, follow=False)
    try:
        header = page.header.object
        assert f'rerun of <a href="?run={first.run_id}">' in header
        assert f'href="?compare={first.run_id}%2C{second.run_id}"' in header
        assert "executed<br><b>1</b>" in header and "saved<br>" in header
        source = RunPage(first.run_id, follow=False)
        assert "rerun of" not in source.header.object
        assert "saved<br>" not in source.header.object
        source.stop()
    finally:
        page.stop()


def test_runs_page_switches_namespace_in_place_and_opens_runs_there(namespace: str) -> None:
    """Inline as on the dashboard: the namespace select lists another namespace's runs,
    the poll keeps to it, and a run opened from there is read in it."""
    from types import SimpleNamespace

    from aiflow_nb import config
    from aiflow_viewer.namespace import href, unknown_namespace

    mine = traced.start(tag="ns-a", fan=1)
    mine.result(timeout=20)
    other = f"{namespace}-b"
    aiflow_nb.configure(namespace=other)
    theirs = failing.start(x=1)
    with pytest.raises(aiflow_nb.RunFailed):
        theirs.result(timeout=20)
    aiflow_nb.configure()  # back to this test's namespace
    opened: list[tuple[str, str, RunPage]] = []
    page = RunsPage(
        on_open=lambda run_id: opened.append(
            (run_id, config.namespace(), RunPage(run_id, follow=False))
        )
    )
    assert list(page.table.value["run_id"]) == [mine.run_id]
    assert other in page.ns_select.options and page.ns_select.value == namespace
    page.ns_select.value = other
    assert list(page.table.value["run_id"]) == [theirs.run_id]
    assert page.workflow.options == ["any", "trace_failing"]
    assert f"namespace <b>{other}</b>" in page.namespace.object
    page.poll()
    assert list(page.table.value["run_id"]) == [theirs.run_id]
    page._on_click(SimpleNamespace(column="run_id", value=theirs.run_id))
    ((run_id, ns, run_page),) = opened
    assert (run_id, ns, run_page.tree.totals.status) == (theirs.run_id, other, "failed")
    assert href(run="r") == "?run=r"  # links name the namespace only when not the process's
    with config.use_namespace(other):
        assert href(run="r") == f"?ns={other}&run=r" and href() == f"?ns={other}"
    assert not unknown_namespace(other) and not unknown_namespace(namespace)
    assert unknown_namespace(f"{namespace}-none")


def test_run_page_sends_the_browser_only_what_it_shows() -> None:
    """The span table's model carries the shown columns (and the row key, and what the
    label's formatter reads), no span ids, names or gap flags; the waterfall's bars carry
    their numbers as typed arrays (binary buffers) and no span ids, which stay in Python
    for a tapped bar."""
    from bokeh.core.serialization import Serializer
    from bokeh.document import Document

    from aiflow_viewer.run_page import TABLE_COLUMNS

    handle = fan_out.start(n=5)
    assert handle.result(timeout=30) == 5
    page = RunPage(handle.run_id, follow=False)
    doc = Document()
    doc.add_root(page.layout.get_root(doc))
    (table,) = [m for m in doc.models if type(m).__name__ == "DataTabulator"]
    assert set(table.source.data) == {"index", *TABLE_COLUMNS}
    assert {"span_id", "name", "gap"}.isdisjoint(table.source.data)
    bars = page.waterfall.source.data
    assert "span_id" not in bars and len(page.waterfall.span_ids) == len(bars["y"]) == 6
    for column in ("y", "left", "right", "duration", "running", "alpha"):
        sent = Serializer().encode(bars[column])  # as the browser is sent it
        assert sent["type"] == "ndarray" and sent["array"]["type"] == "bytes", column
    assert page.waterfall.span_ids[0] == page.tree.roots()[0].span_id
    page.waterfall.source.selected.indices = [2]
    assert page.selected == page.waterfall.span_ids[2]  # a tap still selects its span
