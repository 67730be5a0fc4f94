"""The live run widget: its state is asserted directly (trait values) and through what it
sent (a recording comm, as ipywidgets' own tests do); plus the text/HTML fallbacks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import aiflow_nb as af
from aiflow_nb import component, workflow
from aiflow_nb.notebook import RunWidget, display_run
from aiflow_nb.notebook.display import snapshot

from support.notebook import RecordingComm, comms_fixture  # noqa: F401

_calls: dict[str, int] = {}


@component(retry={"attempts": 3, "initial": 0.01})
def wobbly(key: str) -> str:
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] < 2:
        raise ConnectionError("blip")
    return key


@component(cache=60)
def memo(x: int) -> int:
    return x * 10


@component
async def chat(prompt: str):  # type: ignore[no-untyped-def]
    for word in ["Hello", ", ", prompt, "!"]:
        await asyncio.sleep(0.01)
        yield word


@component
async def count(n: int) -> int:
    for i in range(n):
        af.progress(i + 1, n, f"item {i + 1}")
    return n


@workflow
async def showcase(key: str, n: int) -> dict[str, Any]:
    first = wobbly(key)
    cached = memo(1)
    text = await chat("world")
    parts = await asyncio.gather(count(n), count(2 * n))
    return {"first": first, "cached": cached, "text": text, "parts": parts}


@component
def explode() -> None:
    raise ValueError("kaboom")


@workflow
def failing() -> None:
    explode()


@component
async def chatter(n: int) -> int:
    for i in range(n):
        af.progress(i + 1, n)
        if i % 500 == 0:
            await asyncio.sleep(0)
    return n


@workflow
async def noisy(n: int) -> int:
    return await chatter(n)


def by_widget(comms: list[RecordingComm], widget: Any) -> RecordingComm:
    return next(c for c in comms if c.comm_id == widget.model_id)


def test_widget_shows_status_tree_progress_stream_and_output(comms: list[RecordingComm]) -> None:
    showcase.run(key="warm-the-cache", n=1)
    handle = showcase.start(key="k1", n=5)
    w = RunWidget(handle)
    state = w.wait(30)
    assert state.status == "completed"
    assert "completed" in w.title_html.value and "showcase" in w.title_html.value
    assert handle.run_id in w.title_html.value
    tree = w.tree_html.value
    assert "✓ wobbly" in tree and "2 attempts" in tree
    assert "✓ memo  0.00 s  [cached]" in tree
    assert tree.count("✓ count") == 2
    assert sorted((b.value, b.max) for b in w.bars.values()) == [(5.0, 5.0), (10.0, 10.0)]
    assert all(b.bar_style == "success" for b in w.bars.values())
    assert "Hello, world!" in w.stream_html.value
    assert "Hello, world!" in w.output_html.value and "parts" in w.output_html.value
    assert w.error_html.value == ""
    # what the frontend was sent: the tree's last update is what the widget shows
    tree_comm = by_widget(comms, w.tree_html)
    assert tree_comm.updates("value")[-1] == tree
    assert by_widget(comms, w.bar_box).updates("children")


def test_widget_shows_error_and_traceback_on_failure(comms: list[RecordingComm]) -> None:
    w = RunWidget(failing.start())
    assert w.wait(30).status == "failed"
    assert "failed" in w.title_html.value
    assert "✗ explode" in w.tree_html.value
    error = w.error_html.value
    assert "ComponentFailed" in error and "kaboom" in error and "Traceback" in error
    assert by_widget(comms, w.error_html).updates("value")[-1] == error
    assert w.output_html.value == ""


def test_widget_attached_late_replays_history_then_follows(comms: list[RecordingComm]) -> None:
    handle = noisy.start(n=3000)
    time.sleep(0.05)
    w = RunWidget(handle)
    state = w.wait(30)
    stream_len = sum(1 for _ in handle.events(follow=False))
    assert state.events == stream_len  # every event exactly once
    assert state.status == "completed" and state.output == 3000


def test_widget_of_a_run_whose_stream_ends_with_a_log_line_finishes(
    comms: list[RecordingComm],
) -> None:
    from aiflow_nb import keys
    from aiflow_nb.events.model import FIELD, make_payload
    from aiflow_nb.store import sync_redis

    handle = showcase.start(key="k5", n=1)
    handle.wait(30)
    # a monitor may log after run.completed (the stream's last event is then not terminal)
    sync_redis().xadd(
        keys.run_events(handle.run_id),
        {
            FIELD: make_payload(
                "log", handle.run_id, data={"level": "info", "message": "after the end"}
            )
        },
    )
    assert RunWidget(handle).wait(10).status == "completed"


def test_ten_thousand_events_are_coalesced_into_few_redraws(comms: list[RecordingComm]) -> None:
    handle = noisy.start(n=10_000)
    t0 = time.monotonic()
    w = RunWidget(handle)
    assert time.monotonic() - t0 < 1.0  # the kernel is not blocked while the run goes on
    state = w.wait(60)
    elapsed = time.monotonic() - t0
    assert state.events >= 10_000
    assert list(w.bars.values())[0].value == 10_000
    # at most ~10 redraws/s, plus the first and the last
    assert w.redraws <= elapsed / w.refresh + 3
    sent = by_widget(comms, list(w.bars.values())[0]).updates("value")
    assert len(sent) <= w.redraws < 1000


def test_widget_mimebundle_has_text_and_html_fallbacks(comms: list[RecordingComm]) -> None:
    handle = showcase.start(key="k2", n=1)
    w = RunWidget(handle)
    w.wait(30)
    bundle = w._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    assert bundle["text/plain"].startswith(f"run {handle.run_id} · showcase · completed")
    assert "✓ wobbly" in bundle["text/plain"]
    assert "aiflow-run-tree" in bundle["text/html"]


def test_run_handle_text_and_html_fallbacks() -> None:
    handle = failing.start()
    handle.wait(30)
    html = handle._repr_html_()
    assert "failed" in html and "kaboom" in html and "aiflow-run-tree" in html

    class Printer:
        def __init__(self) -> None:
            self.out = ""

        def text(self, s: str) -> None:
            self.out += s

    p = Printer()
    handle._repr_pretty_(p, False)
    assert p.out.startswith(f"run {handle.run_id} · failing · failed")
    assert "✗ explode" in p.out and "error: ValueError: kaboom" not in p.out
    assert "error: ComponentFailed" in p.out


def test_display_run_without_a_kernel_shows_a_snapshot_and_with_live_a_widget(
    comms: list[RecordingComm], capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance()
    handle = showcase.start(key="k3", n=1)
    handle.wait(30)
    assert display_run(handle) is None  # terminal IPython: no widgets
    assert f"run {handle.run_id} · showcase · completed" in capsys.readouterr().out
    assert display_run(handle) is None  # shown once per cell: a magic's result is not re-shown
    assert capsys.readouterr().out == ""
    widget = display_run(af.attach(handle.run_id), live=True)
    assert isinstance(widget, RunWidget)
    assert widget.wait(10).status == "completed"


def test_snapshot_counts_resumes_and_clears_the_error() -> None:
    handle = showcase.start(key="k4", n=1)
    handle.wait(30)
    state = snapshot(handle)
    assert state.resumes == 0 and state.error is None
    assert state.elapsed() is not None and state.elapsed() >= 0
    assert [row[0] for row in state.tree()][0] == 0  # the workflow span is the root


def test_run_state_counts_resumes_clears_the_error_and_marks_cut_off_spans() -> None:
    from aiflow_nb.events.model import Event
    from aiflow_nb.notebook import RunState
    from aiflow_nb.notebook.render import render_text

    def ev(i: int, type: str, span: str | None = None, **data: object) -> Event:
        return Event(
            id=f"{i}-0",
            type=type,
            ts=float(i),
            run_id="r",
            span_id=span,
            parent_id=None,
            name="wf",
            data=dict(data),
        )

    state = RunState("r")
    assert state.status == "unknown"
    state.apply_all(
        [
            ev(1, "run.queued"),
            ev(2, "run.started"),
            ev(2, "span.started", "s"),
            ev(5, "run.failed", error={"type": "WorkerCrashed", "message": "died"}),
        ]
    )
    assert state.status == "failed" and state.error == {"type": "WorkerCrashed", "message": "died"}
    assert state.spans["s"].status == "interrupted" and state.elapsed() == 3.0
    assert "↯ wf" in render_text(state)
    state.apply_all(
        [
            ev(6, "run.resumed"),
            ev(7, "span.started", "s"),
            ev(8, "span.completed", "s", output=1),
            ev(9, "run.completed", output=1),
        ]
    )
    assert state.resumes == 1 and state.error is None and state.workflow == "wf"
    # 2 -> 9 less the second it sat failed (5 -> 6), shown as its own row
    assert state.status == "completed" and state.output == 1 and state.elapsed() == 6.0
    assert "⏸ failed, until resumed  1.00 s" in render_text(state)


def test_fallbacks_of_an_unknown_run_say_so() -> None:
    handle = af.RunHandle("0" * 24)
    assert "not found" in handle._repr_html_()
    out: list[str] = []
    handle._repr_pretty_(type("P", (), {"text": lambda self, s: out.append(s)})(), False)
    assert out == [f"run {'0' * 24}: not found"]


@workflow
def asks() -> dict[str, Any]:
    """Three waits in a row: a yes/no, a choice, free JSON."""
    ok = af.wait_for_input("ok", bool, prompt="Ship it?")
    pick = af.wait_for_input("pick", {"enum": ["a", "b"]}, prompt="Which one?")
    note = af.wait_for_input("note")
    return {"ok": ok, "pick": pick, "note": note}


def _from_frontend(widget: Any, data: dict[str, Any]) -> None:
    """A message from the frontend over the widget's comm (a click, a changed value)."""
    widget._handle_msg({"content": {"data": data}, "buffers": []})


def _form(w: RunWidget, name: str) -> Any:
    from support.ops import wait_for

    return wait_for(
        lambda: w.form if w.form is not None and w.form.name == name else None,
        20,
        f"the form of wait {name!r}",
    )


def test_the_widget_answers_the_open_wait_with_a_form_built_from_its_schema(
    comms: list[RecordingComm],
) -> None:
    handle = asks.start()
    w = RunWidget(handle)
    form = _form(w, "ok")
    assert "Ship it?" in form.children[0].value
    assert "waits for input &#x27;ok&#x27;" in w.title_html.value
    assert [b.description for b in form.buttons] == ["Approve", "Reject"]
    assert by_widget(comms, w.form_box).updates("children")  # the frontend was sent it
    _from_frontend(form.buttons[0], {"method": "custom", "content": {"event": "click"}})
    assert "answered" in form.status_html.value
    pick = _form(w, "pick")
    assert pick.field.options == ("a", "b")
    _from_frontend(pick.field, {"method": "update", "state": {"index": 1}})
    _from_frontend(pick.buttons[0], {"method": "custom", "content": {"event": "click"}})
    note = _form(w, "note")
    _from_frontend(note.field, {"method": "update", "state": {"value": "nope"}})
    _from_frontend(note.buttons[0], {"method": "custom", "content": {"event": "click"}})
    assert "not JSON" in note.status_html.value  # refused here; the wait stays open
    assert handle.status == "waiting"
    _from_frontend(note.field, {"method": "update", "state": {"value": '{"x": [1, 2]}'}})
    _from_frontend(note.buttons[0], {"method": "custom", "content": {"event": "click"}})
    state = w.wait(30)
    assert state.status == "completed"
    assert handle.result() == {"ok": True, "pick": "b", "note": {"x": [1, 2]}}
    assert w.form is None and w.form_box.children == ()


_flaky_once: dict[str, int] = {}


@component
def breaks_once(key: str) -> str:
    _flaky_once[key] = _flaky_once.get(key, 0) + 1
    if _flaky_once[key] == 1:
        raise RuntimeError("broken the first time")
    return key.upper()


@workflow
def widget_actions(key: str) -> str:
    return breaks_once(key)


@workflow
def widget_parks() -> str:
    return str(af.wait_for_input("go"))


def _click(button: Any) -> None:
    _from_frontend(button, {"method": "custom", "content": {"event": "click"}})


def test_the_widgets_actions_resume_rerun_and_cancel_as_the_cli_would(
    comms: list[RecordingComm],
) -> None:
    from support.ops import wait_for

    key = f"k{time.time_ns()}"
    handle = widget_actions.start(key=key)
    w = RunWidget(handle)
    assert w.wait(30).status == "failed"
    bar = w.actions
    assert bar.status == "failed"
    assert not bar.resume.disabled and not bar.rerun.disabled and bar.cancel.disabled
    _click(bar.resume)
    assert "queued for resumption" in bar.message.value
    assert handle.result(timeout=30) == key.upper()
    wait_for(lambda: bar.status == "completed", 20, "the bar to follow the resumed run")
    assert bar.resume.disabled and bar.cancel.disabled
    _click(bar.resume)  # disabled in the frontend; a stray click is refused, not raised
    _click(bar.rerun)
    (opened,) = w.opened_box.children
    assert isinstance(opened, RunWidget) and opened.handle.run_id != handle.run_id
    assert opened.handle.record()["forked_from"] == handle.run_id
    assert opened.wait(30).status == "completed"
    assert f"rerun: new run {opened.handle.run_id}" in bar.message.value

    parked = widget_parks.start()
    p = RunWidget(parked)
    wait_for(lambda: p.actions.status == "waiting", 20, "the run to park")
    assert not p.actions.cancel.disabled and p.actions.rerun.disabled
    _click(p.actions.cancel)  # asks first: nothing changes until confirmed
    assert p.actions.confirm.layout.display == "inline-flex"
    assert parked.status == "waiting"
    _click(p.actions.confirm)
    assert p.wait(30).status == "cancelled" and parked.status == "cancelled"
    assert p.actions.confirm.layout.display == "none" and p.actions.cancel.disabled
    w.close()
    p.close()
