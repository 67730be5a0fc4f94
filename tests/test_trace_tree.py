"""The trace data layer on real runs: events -> span tree, DataFrame, timeline rows."""

from __future__ import annotations

import time

import pandas as pd
import pytest

import aiflow_nb
from aiflow_nb.access.spans import build_spans, spans_dataframe
from aiflow_nb.events.reader import read_events
from aiflow_nb.trace import STATUS_COLORS, SpanTree, timeline_rows

from support.trace import MODEL, cached, failing, fan_out, open_gate, traced, wait_for


def _tree(run_id: str) -> SpanTree:
    return SpanTree.from_events(read_events(run_id, follow=False))


def test_finished_run_tree_has_nesting_retries_fanout_and_llm_usage() -> None:
    handle = traced.start(tag="a", gate="", fan=3)
    handle.result(timeout=20)
    tree = _tree(handle.run_id)
    rows = tree.rows()
    labels = [(r.depth, r.label) for r in rows]
    assert labels == [
        (0, "traced"),
        (1, "flaky"),
        (1, "chat"),
        (1, "leaf ×3"),
        (2, "leaf [0]"),
        (2, "leaf [1]"),
        (2, "leaf [2]"),
        (1, "boom_with_fallback"),
    ]
    by_label = {r.label: r for r in rows}
    assert by_label["flaky"].attempts == 2 and "retried ×1" in by_label["flaky"].markers
    assert by_label["leaf ×3"].group and by_label["leaf ×3"].markers == "3 completed"
    assert by_label["boom_with_fallback"].markers == "fallback"
    chat = by_label["chat"]
    assert (chat.model, chat.tokens, chat.cost) == (MODEL, 10, pytest.approx(0.0021))
    t = tree.totals
    assert (t.status, t.workflow, t.spans, t.retries, t.errors) == ("completed", "traced", 7, 1, 0)
    assert (t.input_tokens, t.output_tokens, t.tokens) == (7, 3, 10)
    span = tree.spans[chat.span_id]
    assert span.text == "alpha beta gamma" and span.progress["done"] == 3
    retry = tree.spans[by_label["flaky"].span_id].retries[0]
    assert retry["error"]["type"] == "ConnectionError" and retry["wait"] >= 0


def test_incremental_tree_equals_batch_build_and_keeps_dataframe_behaviour() -> None:
    handle = traced.start(tag="b", fan=2)
    handle.result(timeout=20)
    events = list(read_events(handle.run_id, follow=False))
    tree = SpanTree()
    for e in events:
        tree.apply(e)
    batch = build_spans(events)
    assert list(tree.spans) == list(batch)
    assert [s.row() for s in tree.spans.values()] == [s.row() for s in batch.values()]
    frame = handle.to_pandas()
    assert list(frame["span_id"]) == list(batch)
    assert frame.equals(spans_dataframe(tree.spans))
    assert tree.frame().shape[0] == len(tree.rows()) == len(batch) + 1  # + the leaf group


def test_run_in_progress_shows_running_spans_and_growing_bars() -> None:
    gate = f"g{time.time_ns()}"
    handle = fan_out.start(n=4, gate=gate)
    try:
        wait_for(
            lambda: (
                sum(1 for s in _tree(handle.run_id).spans.values() if s.status == "completed") == 3
            ),
            what="3 leaves done",
        )
        tree = _tree(handle.run_id)
        assert tree.status == "running"
        running = {s.name for s in tree.running()}
        assert running == {"trace_fan_out", "leaf"}
        now = time.time()
        first, later = timeline_rows(tree, now), timeline_rows(tree, now + 2.0)
        grown = [i for i, r in enumerate(first["running"]) if r]
        assert len(grown) == 2
        for i in grown:
            assert later["right"][i] == pytest.approx(first["right"][i] + 2.0)
            assert first["color"][i] == STATUS_COLORS["running"]
        ended = [i for i, r in enumerate(first["running"]) if not r]
        assert all(later["right"][i] == first["right"][i] for i in ended)
        group = next(r for r in tree.rows() if r.group)
        assert group.status == "running" and group.markers == "3 completed, 1 running"
    finally:
        open_gate(gate)
    assert handle.result(timeout=10) == 4
    assert not _tree(handle.run_id).running()


def test_failed_run_carries_error_with_traceback_then_resume_replays_journal() -> None:
    handle = failing.start(x=3)
    with pytest.raises(aiflow_nb.RunFailed):
        handle.result(timeout=10)
    tree = _tree(handle.run_id)
    assert tree.status == "failed" and tree.totals.errors == 2  # boom and the workflow span
    boom = next(s for s in tree.spans.values() if s.name == "boom")
    assert boom.error["type"] == "ComponentFailed" and "bad value 3" in boom.error["message"]
    assert "Traceback" in boom.error["traceback"]
    assert timeline_rows(tree)["color"][1] == STATUS_COLORS["failed"]


def test_tree_marks_spans_cut_off_by_a_run_end_as_interrupted() -> None:
    from aiflow_nb.events.model import Event

    def ev(
        i: int,
        type: str,
        span: str | None = None,
        parent: str | None = None,
        name: str | None = None,
        **data: object,
    ) -> Event:
        return Event(
            id=f"{i}-0",
            type=type,
            ts=float(i),
            run_id="r",
            span_id=span,
            parent_id=parent,
            name=name,
            data=dict(data),
        )

    tree = SpanTree.from_events(
        [
            ev(1, "run.started", name="wf"),
            ev(1, "span.started", "root", None, "wf"),
            ev(2, "span.started", "a", "root", "a"),
            ev(3, "span.completed", "a", "root", "a"),
            ev(3, "span.started", "b", "root", "b"),
            ev(9, "run.resumed", name="wf"),  # the worker died while b ran
        ]
    )
    # cut off at the attempt's last sign of life (3), not at the resume (9): 3..9 is a gap
    assert tree.spans["b"].status == "interrupted" and tree.spans["b"].end == 3.0
    assert [(g.start, g.end, g.label) for g in tree.gaps] == [(3.0, 9.0, "waiting for a worker")]
    assert "interrupted ×1" in next(r.markers for r in tree.rows() if r.span_id == "b")
    tree.extend(
        [
            ev(10, "span.started", "root", None, "wf"),
            ev(10, "span.replayed", "a", "root", "a", output=1),
            ev(11, "span.started", "b", "root", "b"),
            ev(12, "span.completed", "b", "root", "b", output=2),
            ev(12, "span.completed", "root", None, "wf"),
            ev(13, "run.completed", name="wf"),
        ]
    )
    assert tree.totals.resumes == 1 and tree.status == "completed"
    assert tree.spans["a"].replayed and tree.spans["b"].status == "completed"
    rows = {r.span_id: r for r in tree.rows()}
    assert rows["a"].markers == "replayed" and rows["b"].markers == "interrupted ×1"
    from aiflow_viewer.detail import span_html

    assert "<b>interrupted ×1</b>" in span_html(tree, tree.spans["b"])  # the detail pane too
    assert timeline_rows(tree)["color"][1] == STATUS_COLORS["replayed"]


def test_spans_dataframe_has_llm_usage_columns() -> None:
    handle = traced.start(tag="df", fan=1)
    handle.result(timeout=20)
    frame = handle.to_pandas().set_index("name")
    assert frame.loc["chat", ["model", "input_tokens", "output_tokens"]].tolist() == [MODEL, 7, 3]
    assert frame.loc["chat", "cost_usd"] == pytest.approx(0.0021)
    assert pd.isna(frame.loc["flaky", "model"]) and frame.loc["flaky", "attempts"] == 2
    assert aiflow_nb.spans_dataframe(aiflow_nb.build_spans(handle.events(follow=False))).equals(
        handle.to_pandas()
    )


def test_cache_hit_is_marked_in_tree_totals_and_timeline() -> None:
    assert cached.run(key="abc") == "cba"
    again = cached.start(key="abc")
    assert again.result(timeout=10) == "cba"
    tree = _tree(again.run_id)
    row = next(r for r in tree.rows() if r.name == "lookup")
    assert row.markers == "cached" and tree.totals.cached == 1
    assert timeline_rows(tree)["color"][1] == STATUS_COLORS["cached"]
