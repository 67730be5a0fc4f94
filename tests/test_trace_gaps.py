"""Resumed runs' traces are true: a real worker process is killed (SIGKILL) mid-run, the
run resumes after a delay on another worker; replayed spans keep the original attempt's
start and end, the root keeps its first start, and the time between the crash and the
resume is a ``waiting for a worker`` gap in the span tree, timeline, DataFrame and OTLP.
A failed run resumed later: its duration leaves out the time it sat failed."""

from __future__ import annotations

import signal
import time

import pytest

import aiflow_nb
from aiflow_nb import keys
from aiflow_nb.access.gaps import build_gaps
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.errors import RunFailed, RunStateError
from aiflow_nb.events.model import Event
from aiflow_nb.events.reader import read_events
from aiflow_nb.export.otlp import OtlpExporter
from aiflow_nb.notebook.render import render_text, tree_html
from aiflow_nb.notebook.state import RunState
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.ops.submit import submit
from aiflow_nb.serialization import dumps, loads
from aiflow_nb.store import sync_redis
from aiflow_nb.trace import SpanTree, timeline_rows
from aiflow_viewer.run_page import RunPage

from support.otlp_receiver import Receiver
from support.processes import python_subprocess
from support.trace import fails_until_open, naps, open_gate, wait_for

WORKER = """
import asyncio, support.trace
from aiflow_nb.ops.worker import Worker
asyncio.run(Worker(monitor=False).serve())
"""
FAST = {"AIFLOW_HEARTBEAT_INTERVAL": "0.2", "AIFLOW_HEARTBEAT_TTL": "1"}
DELAY = 2.0
"""Seconds the crashed run is left before anyone resumes it."""


def _events(run_id: str) -> list[Event]:
    return list(read_events(run_id, follow=False))


def _first(events: list[Event], type: str, key_end: str | None = None) -> Event:
    """The first event of ``type`` (of the span whose step key ends with ``key_end``)."""
    ids = {e.span_id for e in events if str(e.data.get("key", "")).endswith(key_end or "")}
    return next(e for e in events if e.type == type and (key_end is None or e.span_id in ids))


def _crash_and_resume() -> tuple[str, float]:
    """A ``trace_naps`` run whose worker is SIGKILLed in step 1, resumed ``DELAY`` s later
    on this process's worker; its run id and the moment of the kill."""
    gate = f"gap{time.time_ns()}"
    worker = python_subprocess(WORKER, FAST)
    try:
        run_id = submit(naps.name, naps.bind_inputs({"gate": gate}))
        wait_for(
            lambda: any(
                e.type == "span.started" and str(e.data.get("key")).endswith("nap#1")
                for e in _events(run_id)
            ),
            timeout=30,
            what="step 1 running in the worker process",
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        killed_at = time.time()
        worker.communicate(timeout=10)  # reaps it and closes its pipes
    open_gate(gate)
    wait_for(lambda: not sync_redis().exists(keys.run_lease(run_id)), what="lease gone")
    time.sleep(max(0.0, killed_at + DELAY - time.time()))
    ensure_local_worker(force=True)
    try:
        aiflow_nb.resume(run_id)
    except RunStateError:
        pass  # the in-process worker's monitor recovered it first
    assert RunHandle(run_id).result(timeout=20) == [1.0, 0.0, 0.2]
    return run_id, killed_at


def test_crashed_run_resumed_later_keeps_its_times_and_shows_the_wait() -> None:
    run_id, killed_at = _crash_and_resume()
    events = _events(run_id)
    resumed = _first(events, "run.resumed")
    first = events[: events.index(resumed)]
    started, completed = (
        _first(first, "span.started", "nap#0"),
        _first(first, "span.completed", "nap#0"),
    )
    replayed = _first(events, "span.replayed", "nap#0")
    assert (replayed.data["start"], replayed.data["end"]) == (started.ts, completed.ts)

    tree = SpanTree.from_events(events, run_id)
    step0, root = tree.spans[started.span_id or ""], tree.roots()[0]
    assert step0.replayed and (step0.start, step0.end) == (started.ts, completed.ts)
    assert 1.0 <= (step0.duration or 0) < 1.5  # it showed 94-101 s before
    assert root.start == _first(first, "span.started").ts  # the first attempt's root start
    assert root.start is not None and root.start <= min(s.start or 0 for s in tree.spans.values())

    (gap,) = tree.gaps
    attempt_events = [e for e in first if not (e.type == "log" and e.data.get("recovered"))]
    assert gap.start == attempt_events[-1].ts <= killed_at  # the attempt's last sign of life
    assert gap.end == resumed.ts and not gap.failed and gap.label == "waiting for a worker"
    length = gap.end - gap.start
    assert length >= DELAY
    assert tree.totals.waiting(0) == pytest.approx(length)
    assert tree.totals.started == _first(first, "run.started").ts <= root.start
    total = (tree.totals.ended or 0) - tree.totals.started
    assert tree.totals.duration(0) == pytest.approx(total)  # waiting is part of the duration

    rows = [r for r in tree.rows() if r.gap]
    assert [(r.label, r.depth, r.status) for r in rows] == [("waiting for a worker", 1, "waiting")]
    assert rows[0].duration == pytest.approx(length)
    assert rows[0].start == pytest.approx(gap.start - root.start)
    bars = timeline_rows(tree)
    i = bars["span_id"].index(gap.key)
    assert bars["status"][i] == "waiting" and not bars["running"][i]
    assert bars["right"][i] - bars["left"][i] == pytest.approx(length)
    j = bars["span_id"].index(step0.span_id)
    assert bars["right"][j] - bars["left"][j] == pytest.approx(completed.ts - started.ts)

    frame = RunHandle(run_id).to_pandas().set_index("span_id")
    assert frame.loc[gap.key, ["name", "status"]].tolist() == ["waiting for a worker", "waiting"]
    assert frame.loc[gap.key, "duration"] == pytest.approx(length)
    assert frame.loc[gap.key, "parent_id"] == root.span_id
    assert frame.loc[step0.span_id, "duration"] == pytest.approx(completed.ts - started.ts)

    with Receiver() as rx:
        OtlpExporter(rx.endpoint).export_run(run_id)
        sent = rx.spans()
    spans = {s.name: s for s in sent}
    wait_span = spans["waiting for a worker"]
    nanos = wait_span.end_time_unix_nano - wait_span.start_time_unix_nano
    assert nanos / 1e9 == pytest.approx(length, abs=1e-6)
    attributes = {a.key: a.value for a in wait_span.attributes}
    assert attributes["aiflow.gap"].bool_value and wait_span.parent_span_id
    starts = sorted(s.start_time_unix_nano for s in sent if s.name == "nap")
    assert starts[0] == int(started.ts * 1_000_000_000)  # the replayed step's own start

    state = RunState(run_id).apply_all(events)  # the notebook widget's model
    text = render_text(state)
    assert f"⏸ waiting for a worker  {length:.2f} s" in text
    assert f"waited {length:.2f} s for a worker" in text
    assert [type(item).__name__ for _, item in state.tree()].count("Gap") == 1
    assert "⏸ waiting for a worker" in tree_html(state)

    page = RunPage(run_id, follow=False)  # the dashboard
    assert gap.key in list(page.table.value["key"]) and gap.key in page.waterfall.span_ids
    assert f"waiting<br><b>{length:.2f} s</b>" in page.header.object
    page.select(gap.key)
    assert "waiting for a worker" in page.detail.object and f"{length:.2f} s" in page.detail.object


def test_resumed_failed_run_leaves_the_time_it_sat_failed_out_of_its_duration() -> None:
    gate = f"failed{time.time_ns()}"
    worker = python_subprocess(WORKER, FAST)
    try:
        handle = RunHandle(
            submit(fails_until_open.name, fails_until_open.bind_inputs({"gate": gate}))
        )
        with pytest.raises(RunFailed):
            handle.result(timeout=30)
        time.sleep(DELAY)  # it sits failed
        open_gate(gate)
        wait_for(lambda: not sync_redis().exists(keys.run_lease(handle.run_id)), what="lease gone")
        assert aiflow_nb.resume(handle.run_id).result(timeout=30) == [0.3, "open"]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=10)  # reaps it and closes its pipes
    events = _events(handle.run_id)
    failed, resumed = _first(events, "run.failed"), _first(events, "run.resumed")
    tree = SpanTree.from_events(events, handle.run_id)
    (gap,) = tree.gaps
    assert (gap.start, gap.end, gap.failed) == (failed.ts, resumed.ts, True)
    assert gap.label == "failed, until resumed" and gap.end - gap.start >= DELAY
    wall = (tree.totals.ended or 0) - (tree.totals.started or 0)
    assert tree.totals.duration(0) == pytest.approx(wall - (gap.end - gap.start))
    assert tree.totals.duration(0) < 1.5 and tree.totals.waiting(0) == 0.0  # it showed ~299 s
    step0 = next(s for s in tree.spans.values() if s.key and s.key.endswith("nap#0"))
    assert step0.replayed and 0.3 <= (step0.duration or 0) < 0.6
    root = tree.roots()[0]
    assert root.start == _first(events, "span.started").ts
    assert [r.label for r in tree.rows() if r.gap] == ["failed, until resumed"]


def test_old_journal_entries_without_times_still_replay() -> None:
    """Entries journaled before steps recorded their start and end replay as before; the
    span then shows the times its original events gave (its own time without them)."""
    gate = f"old{time.time_ns()}"
    ensure_local_worker(force=True)
    handle = RunHandle(submit(fails_until_open.name, fails_until_open.bind_inputs({"gate": gate})))
    with pytest.raises(RunFailed):
        handle.result(timeout=30)
    journal = keys.run_journal(handle.run_id)
    (key,) = [k for k in sync_redis().hkeys(journal) if k.endswith(b"nap#0")]
    entry = loads(sync_redis().hget(journal, key))
    assert entry["s"] < entry["e"]  # new entries carry the step's start and end
    sync_redis().hset(journal, key, dumps({"h": entry["h"], "r": entry["r"]}))
    open_gate(gate)
    wait_for(lambda: not sync_redis().exists(keys.run_lease(handle.run_id)), what="lease gone")
    assert aiflow_nb.resume(handle.run_id).result(timeout=30) == [0.3, "open"]
    events = _events(handle.run_id)
    replayed = _first(events, "span.replayed", "nap#0")
    assert "start" not in replayed.data and replayed.data["output"] == 0.3
    step0 = SpanTree.from_events(events).spans[replayed.span_id or ""]
    assert step0.replayed and (step0.start, step0.end) == (
        _first(events, "span.started", "nap#0").ts,
        _first(events, "span.completed", "nap#0").ts,
    )
    alone = SpanTree.from_events([replayed]).spans[replayed.span_id or ""]  # no history
    assert (alone.start, alone.end) == (replayed.ts, replayed.ts)


def _ev(i: int, type: str, span: str | None = None, **data: object) -> Event:
    parent = None if span in (None, "root") else "root"
    return Event(f"{i}-0", type, float(i), "r", span, parent, span or "wf", data=dict(data))


def test_gaps_after_a_handback_a_recovery_and_a_cancel_while_waiting() -> None:
    started = [_ev(1, "run.started"), _ev(1, "span.started", "root"), _ev(2, "span.started", "a")]
    handback = [*started, _ev(3, "log", handback=True), _ev(5, "run.resumed", attempt=2)]
    assert [(g.start, g.end, g.attempt) for g in build_gaps(handback)] == [(3.0, 5.0, 2)]
    recovered = [*started, _ev(4, "log", recovered=True), _ev(6, "run.resumed", attempt=2)]
    assert [(g.start, g.end) for g in build_gaps(recovered)] == [(2.0, 6.0)]  # last sign: 2
    tree = SpanTree.from_events([*started, _ev(4, "log", recovered=True)])
    (open_gap,) = tree.gaps  # the run waits: the gap is open and grows with the clock
    assert open_gap.end is None and tree.totals.waiting(10.0) == 8.0
    assert timeline_rows(tree, now=10.0)["running"][-1] is True
    tree.apply(_ev(7, "run.cancelled"))
    assert (open_gap.end, tree.totals.waiting(99.0), tree.totals.duration(99.0)) == (7.0, 5.0, 6.0)
    failed = [
        *started,
        _ev(3, "run.failed"),
        _ev(9, "run.resumed", attempt=2),
        _ev(10, "run.completed"),
    ]
    totals = SpanTree.from_events(failed).totals
    assert (totals.duration(0), totals.waiting(0), totals.gaps.idle(0)) == (3.0, 0.0, 6.0)
