"""Runs that park at a wait (``wait_for_input``, ``wait_for_event``, ``sleep``) hold no
worker: real ``aiflow worker`` processes, the test's Redis, answers from the handle. A
parked run survives its worker's SIGKILL; its answer re-queues it and the next attempt
replays up to the wait (the step before it ran once: ``examples/chaos.py`` counts the
step bodies in Redis, outside the worker)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import aiflow_nb
from aiflow_nb import (
    AlreadyAnswered,
    InvalidInputs,
    RunHandle,
    RunStateError,
    WaitNotFound,
    keys,
)
from aiflow_nb.events.status import RunStatus, SpanStatus
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis
from aiflow_nb.trace.tree import SpanTree

from support.ops import fleet, wait_for
from support.outage import PrivateRedis, private_redis_fixture  # noqa: F401

STEP0 = "approval/step#0"


def _status(handle: RunHandle, status: str, timeout: float = 20.0) -> None:
    wait_for(lambda: handle.status == status, timeout, f"run {handle.run_id} to be {status}")


def _ran_once(handle: RunHandle, *steps: str) -> None:
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects
    for key in steps:
        assert effects.get(key) == 1, (key, effects)


def test_parked_runs_hold_no_slot_and_survive_a_sigkilled_worker(tmp_path: Path) -> None:
    """40 runs on one worker with --concurrency 4 all reach ``waiting`` (parked runs hold
    no slot); the worker is SIGKILLed; another worker resumes each answered run, and the
    step before the wait ran exactly once."""
    handles = [RunHandle(submit("approval", {})) for _ in range(40)]
    with fleet(tmp_path) as start:
        first = start("--concurrency", "4").ready()
        for handle in handles:
            _status(handle, RunStatus.WAITING, 60)
        r = sync_redis()
        assert r.scard(keys.running(0)) == 0
        assert all(not r.exists(keys.run_lease(h.run_id)) for h in handles)
        first.kill()
        second = start("--concurrency", "4").ready()
        wait = handles[0].waits
        assert [(w["name"], w["kind"], w["prompt"]) for w in wait] == [
            ("approve", "input", "Approve?")
        ]
        assert wait[0]["schema"] == {"type": "boolean"}
        for i, handle in enumerate(handles):
            handle.respond("approve", i % 2 == 0)
        for i, handle in enumerate(handles):
            assert handle.result(timeout=30) == {"answer": i % 2 == 0}
            _ran_once(handle, STEP0, "approval/step#1")
        assert second.proc.poll() is None


def test_answers_are_validated_and_recorded_once(tmp_path: Path) -> None:
    handle = RunHandle(submit("approval", {}))
    with fleet(tmp_path) as start:
        start().ready()
        _status(handle, RunStatus.WAITING)
        with pytest.raises(InvalidInputs) as invalid:
            handle.respond("approve", "yes")
        assert invalid.value.fields == [
            {"field": "value", "message": "'yes' is not of type 'boolean'"}
        ]
        with pytest.raises(WaitNotFound, match="no open wait named 'other'.*approve"):
            handle.respond("other", True)
        with pytest.raises(RunStateError, match="is a input wait; answer it with respond"):
            handle.send("approve", True)
        assert handle.status == RunStatus.WAITING  # refusals change nothing
        handle.respond("approve", False)
        with pytest.raises(AlreadyAnswered):
            handle.respond("approve", True)
        assert handle.result(timeout=20) == {"answer": False}
        with pytest.raises(AlreadyAnswered):
            aiflow_nb.respond(handle.run_id, "approve", True)
    received = [e for e in handle.events(follow=False) if e.type == "input.received"]
    assert len(received) == 1
    assert received[0].data == {"name": "approve", "kind": "input", "by": "python", "value": False}
    _ran_once(handle, STEP0)
    # the trace: the time parked is a gap of its own, and it cut no span off
    tree = SpanTree.from_events(handle.events(follow=False))
    rows = [(r.label.strip(), r.status) for r in tree.rows()]
    assert ("waiting for input 'approve'", SpanStatus.WAITING) in rows
    assert ("waiting for a worker", SpanStatus.WAITING) not in rows
    assert not tree.interruptions
    assert tree.totals.waiting(time.time()) < tree.totals.gaps.parked(time.time())


def test_a_sync_workflow_parks_and_resumes_too(tmp_path: Path) -> None:
    handle = RunHandle(submit("sync_approval", {}))
    with fleet(tmp_path) as start:
        start().ready()
        _status(handle, RunStatus.WAITING)
        aiflow_nb.respond(handle.run_id, "approve", True)
        assert handle.result(timeout=20) == {"answer": True}
    _ran_once(handle, "sync_approval/sync_step#0", "sync_approval/sync_step#1")


def test_a_timeout_raises_input_timeout_into_the_workflow(tmp_path: Path) -> None:
    handle = RunHandle(submit("approval", {"timeout": 1.0}))
    with fleet(tmp_path) as start:
        start().ready()
        _status(handle, RunStatus.WAITING)
        assert sync_redis().zscore(keys.timers(0), handle.run_id) is not None
        assert handle.result(timeout=20) == {"answer": None}  # caught InputTimeout
        with pytest.raises(AlreadyAnswered):
            handle.respond("approve", True)
    received = [e for e in handle.events(follow=False) if e.type == "input.received"]
    assert [e.data for e in received] == [
        {"name": "approve", "kind": "input", "by": "timer", "timeout": True}
    ]
    assert sync_redis().zscore(keys.timers(0), handle.run_id) is None
    _ran_once(handle, STEP0)


def test_waits_in_gather_branches_are_answered_one_park_after_another(tmp_path: Path) -> None:
    """Two ``asyncio.gather`` branches wait for ``a`` and ``b``: the run parks at the first
    reached, lists only it, resumes on its answer and parks at the other; the sibling's
    journaled step never ran twice."""
    handle = RunHandle(submit("two_asks", {}))
    with fleet(tmp_path) as start:
        start().ready()
        answered = []
        for _ in range(2):
            _status(handle, RunStatus.WAITING)
            [wait] = handle.waits
            assert wait["name"] in {"a", "b"} and wait["name"] not in answered
            handle.respond(wait["name"], wait["name"].upper())
            answered.append(wait["name"])
        assert handle.result(timeout=20) == ["A", "B"]
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects
    assert set(effects) == {"two_asks/ask#0/step#0", "two_asks/ask#1/step#0"}
    assert all(1 <= n <= 2 for n in effects.values())  # a step in flight at the park reruns
    parks = [e for e in handle.events(follow=False) if e.type == "run.waiting"]
    assert len(parks) == 2


def test_signals_wake_wait_for_event(tmp_path: Path) -> None:
    handle = RunHandle(submit("signalled", {}))
    with fleet(tmp_path) as start:
        start().ready()
        _status(handle, RunStatus.WAITING)
        handle.send("go", {"n": 3, "password": "hunter2-long"})
        assert handle.result(timeout=20) == {"n": 3, "password": "***"}  # masked when stored
    _ran_once(handle, "signalled/step#0")
    [received] = [e.data for e in handle.events(follow=False) if e.type == "input.received"]
    assert received["value"] == {"n": 3, "password": "***"}  # the event masks secrets
    journal = sync_redis().hget(keys.run_journal(handle.run_id), "@wait/go")
    assert b"hunter2-long" in journal  # the workflow got the answer itself


def test_durable_sleep_wakes_on_time_across_a_worker_restart(tmp_path: Path) -> None:
    """``sleep(2)``: the run parks; the worker that parked it is SIGKILLed while it
    sleeps; the other worker's monitor wakes it, and the run's second stamp is between 2
    and 3 s after its first (taken before it went to sleep). Both workers are up before
    the run starts: starting a process can itself take 2 s on a loaded machine."""
    with fleet(tmp_path) as start:
        workers = [start().ready(), start().ready()]
        handle = RunHandle(submit("napper", {"seconds": 2.0}))
        _status(handle, RunStatus.WAITING)
        parker = next(w for w in workers if w.id == handle.record()["worker"])
        parker.kill()
        slept = handle.result(timeout=30)
    assert 2.0 <= slept < 3.0, slept
    types = [e.type for e in handle.events(follow=False) if e.type.startswith(("run.", "input."))]
    assert types == [
        "run.queued",
        "run.started",
        "run.waiting",
        "input.received",
        "run.resumed",
        "run.completed",
    ]
    _ran_once(handle, "napper/step#0")


def test_a_waiting_run_cancels_at_once_and_cannot_be_resumed(tmp_path: Path) -> None:
    handle = RunHandle(submit("approval", {"timeout": 60}))
    with fleet(tmp_path) as start:
        start().ready()
        _status(handle, RunStatus.WAITING)
        with pytest.raises(RunStateError, match="is waiting"):
            handle.resume()
        assert handle.cancel() == RunStatus.CANCELLED
    assert handle.status == RunStatus.CANCELLED
    assert sync_redis().zscore(keys.timers(0), handle.run_id) is None
    with pytest.raises(WaitNotFound):
        handle.respond("approve", True)


def test_wait_for_input_outside_a_run_is_refused() -> None:
    with pytest.raises(RunStateError, match="only inside a run"):
        aiflow_nb.wait_for_input("x")
    t0 = time.monotonic()
    aiflow_nb.sleep(0.01)  # outside a run: time.sleep
    assert time.monotonic() - t0 >= 0.01


def test_a_redis_restart_while_runs_are_parked_loses_none(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Runs parked at an answer and at a sleep; Redis is SIGKILLed and restarted on its
    AOF (the worker lives through it); every parked run is still waiting, its answer and
    its timer still wake it, and the step before each wait ran once."""
    with fleet(tmp_path) as start:
        worker = start().ready()
        asking = [RunHandle(submit("approval", {})) for _ in range(10)]
        sleeping = [RunHandle(submit("napper", {"seconds": 4.0})) for _ in range(5)]
        for handle in [*asking, *sleeping]:
            _status(handle, RunStatus.WAITING)
        time.sleep(1.5)  # past the AOF's fsync (everysec)
        private_redis.kill()
        time.sleep(1.0)
        private_redis.restart()
        assert all(h.status == RunStatus.WAITING for h in asking)
        for handle in asking:
            handle.respond("approve", True)
        for handle in asking:
            assert handle.result(timeout=60) == {"answer": True}
            _ran_once(handle, STEP0, "approval/step#1")
        for handle in sleeping:
            assert handle.result(timeout=60) >= 4.0
            _ran_once(handle, "napper/step#0")
        assert worker.proc.poll() is None


def test_a_finished_attempt_leaves_the_bookkeeping_of_a_newer_attempt_of_its_run() -> None:
    """A parked run answered at once can come back to the same worker while the attempt
    that parked it is still acking its entry: that attempt's end must not drop the new
    attempt's task, control and fence (its lease would go unrenewed). ``_handle`` is
    replaced by a stand-in (the bookkeeping is what is tested, not an execution)."""
    import asyncio

    from aiflow_nb.ops.worker import Worker

    async def scenario() -> bool:
        worker = Worker(monitor=False)
        gates = {"old": asyncio.Event(), "new": asyncio.Event()}
        order = iter(["old", "new"])

        async def handle(*_args: object) -> None:
            await gates[next(order)].wait()

        worker._handle = handle  # type: ignore[method-assign]
        worker._spawn("q", "1-0", "run-1", 0.0)
        old = worker.tasks["run-1"]
        await asyncio.sleep(0)
        worker._spawn("q", "2-0", "run-1", 0.0)
        new = worker.tasks["run-1"]
        await asyncio.sleep(0)
        gates["old"].set()
        await old
        await asyncio.sleep(0)
        kept = worker.tasks.get("run-1") is new and "run-1" in worker.controls
        gates["new"].set()
        await new
        await asyncio.sleep(0)
        return kept and "run-1" not in worker.tasks

    assert asyncio.run(scenario())
