"""Fencing with real worker processes: SIGSTOP the worker holding a run until the monitor
resumes it on the other worker, then SIGCONT it. The stalled attempt must write nothing
more (its token is gone), stop before starting another step, and leave the new attempt
the only one in the stream from the takeover on."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.events.status import TERMINAL_EVENTS
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops import submit as submit_module
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis

from support.ops import fleet, journal_keys, record, running_on, wait_for

APPS = ("--app", "apps.fencing_app")

CASES = [
    # (workflow, inputs, journaled steps when the holder is stopped)
    pytest.param("steps", {"n": 6, "delay": 0.5}, 2, id="async-mid-run"),
    pytest.param("steps", {"n": 5, "delay": 0.5}, 1, id="async-after-first-step"),
    pytest.param("sync_steps", {"n": 6, "delay": 0.5}, 2, id="sync-mid-run"),
    pytest.param("sync_steps", {"n": 4, "delay": 0.8}, 3, id="sync-last-step"),
    pytest.param("token_steps", {"n": 3, "delay": 0.3, "last": 2.5}, 3, id="random-last-step"),
]


def _key_of(events: list[Any]) -> dict[str, str]:
    return {
        e.span_id: e.data["key"]
        for e in events
        if e.type in ("span.started", "span.replayed") and e.data.get("key")
    }


@pytest.mark.parametrize(("workflow", "inputs", "journaled"), CASES)
def test_a_stalled_lease_holder_writes_nothing_after_the_takeover(
    tmp_path: Path, workflow: str, inputs: dict[str, Any], journaled: int
) -> None:
    with fleet(tmp_path) as start:
        workers = [start(*APPS), start(*APPS)]
        for w in workers:
            w.ready()
        handle = RunHandle(submit(workflow, inputs))
        wait_for(lambda: len(journal_keys(handle.run_id)) >= journaled, 20, "journaled steps")
        holder = running_on(handle.run_id)
        old = next(w for w in workers if w.id == holder)
        new = next(w for w in workers if w is not old)
        old.signal(signal.SIGSTOP)
        try:
            stopped_with = journal_keys(handle.run_id)
            wait_for(lambda: running_on(handle.run_id, new.id), 20, "the takeover")
        finally:
            old.signal(signal.SIGCONT)
        output = handle.result(timeout=30)
        time.sleep(0.5)  # whatever the woken worker might still send has landed
        events = list(handle.events(follow=False))
        old_log = old.log()
        assert old.proc.poll() is None, old_log  # it survived, and serves on

    # exactly one terminal event, and the record agrees with it
    terminal = [e for e in events if e.type in TERMINAL_EVENTS]
    assert [e.type for e in terminal] == ["run.completed"], [e.type for e in events]
    assert record(handle.run_id)["status"] == "completed"
    assert terminal[0].data["output"] == output
    assert events[-1] is terminal[0]
    rec = handle.record()
    assert rec["worker"] == new.id and rec["attempt"] == 2

    # only the step in flight at the stop ran twice; journaled steps replayed
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects
    twice = [key for key, count in effects.items() if count > 1]
    assert len(twice) <= 1 and all(effects[k] == 2 for k in twice), effects
    assert not set(twice) & stopped_with, (effects, stopped_with)

    # from the takeover on, the stream shows the new attempt only
    types = [e.type for e in events]
    assert types.count("run.resumed") == 1
    resumed = types.index("run.resumed")
    after = events[resumed:]
    assert not [e for e in after if e.type == "span.failed"], after  # no old-attempt cancel
    key_of = _key_of(events)
    completed = Counter(key_of.get(e.span_id or "") for e in events if e.type == "span.completed")
    assert all(n == 1 for n in completed.values()), completed  # no step completed twice
    replayed = {key_of[e.span_id or ""] for e in after if e.type == "span.replayed"}
    assert stopped_with <= replayed
    started_after = {key_of[e.span_id or ""] for e in after if e.type == "span.started"}
    for e in after:  # every step completed after the takeover was started by the new one
        if e.type == "span.completed":
            assert key_of[e.span_id or ""] in started_after

    assert "lease lost" in old_log
    assert "Traceback" not in old_log, old_log


def test_the_heartbeat_never_renews_or_cancels_a_run_whose_terminal_write_is_out(
    tmp_path: Path,
) -> None:
    """Heartbeats every 2 ms against 600 one-step runs: renewals keep crossing the runs'
    terminal writes (which release the lease). None may cancel a run in its final write
    ("lease lost"), and every queue entry is deleted once its run ended."""
    from aiflow_nb import keys
    from aiflow_nb.ops.deployments import deployments
    from aiflow_nb.store import sync_redis

    handles = [RunHandle(submit("one_step", {"x": i})) for i in range(600)]
    env = {"AIFLOW_HEARTBEAT_INTERVAL": "0.002"}
    with fleet(tmp_path) as start:
        worker = start("--burst", "--concurrency", "64", env=env)
        assert worker.wait(120) == 0, worker.log()
        log = worker.log()
    assert "lease lost" not in log, log
    statuses = Counter(record(h.run_id)["status"] for h in handles)
    assert statuses == {"completed": 600}, statuses
    for h in handles[:50]:
        types = [e.type for e in h.events(follow=False)]
        assert [t for t in types if t in TERMINAL_EVENTS] == ["run.completed"]
    r = sync_redis()
    assert not r.smembers(keys.running(0))
    assert all(r.xlen(q) == 0 for q in r.smembers(keys.queues("default", 0))), "entries left"
    assert all(d["queued"] == 0 for d in deployments())


def test_a_cancellation_swallowed_by_wait_for_is_repeated_until_the_run_sees_it() -> None:
    """The second SIGTERM's abort sometimes let the run finish on the first worker: on
    Python 3.11 a cancellation landing as an inner ``asyncio.wait_for`` completes is lost
    (redis-py sends each command under one). ``stop`` cancels again until it is seen."""
    import asyncio
    import sys

    from aiflow_nb.ops.executor import RunControl, stop

    async def scenario(use_stop: bool) -> str:
        loop = asyncio.get_running_loop()
        inner: asyncio.Future[int] = loop.create_future()
        control = RunControl()

        async def run() -> str:
            try:
                await asyncio.wait_for(inner, 5)  # like a socket write that just finished
                await asyncio.sleep(1)  # the next step
                return "finished"
            except asyncio.CancelledError:
                control.acknowledged = True
                return "cancelled"

        task = asyncio.create_task(run())
        await asyncio.sleep(0.01)  # the task waits in wait_for
        inner.set_result(1)  # it completes, and in the same loop turn the abort lands
        if use_stop:
            stop(task, control, "abort")
        else:
            task.cancel()
        return await task

    if sys.version_info < (3, 12):
        assert asyncio.run(scenario(use_stop=False)) == "finished"  # the lost cancellation
    assert asyncio.run(scenario(use_stop=True)) == "cancelled"


def test_cancel_of_a_queued_run_that_ends_meanwhile_keeps_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cancel() reads a queued run, then a worker ends it before cancel writes: the end
    stands (a terminal status is never overwritten), cancel reports it."""
    handle = RunHandle(submit_module.submit("nobody_serves_this", {}))
    read = submit_module._status
    raced: list[str] = []

    def read_then_race(r: Any, run_id: str) -> dict[str, str]:
        state = read(r, run_id)
        if not raced:  # another process ends the run between the read and the write
            raced.append(state["status"])
            sync_redis().hset(keys.run(run_id), "status", "completed")
        return state

    monkeypatch.setattr(submit_module, "_status", read_then_race)
    assert submit_module.cancel(handle.run_id) == "completed"
    assert raced == ["queued"]
    assert handle.status == "completed"
    assert [e.type for e in handle.events(follow=False)] == ["run.queued"]
