"""SIGTERM drains a worker process; runs in hand finish, or are handed back and resumed."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from aiflow_nb.access.handle import RunHandle
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops.presence import live_workers
from aiflow_nb.ops.submit import submit

from support.ops import fleet, journal_keys, record, running_on, wait_for


def test_sigterm_lets_runs_in_hand_finish_and_takes_no_new_run(tmp_path: Path) -> None:
    with fleet(tmp_path) as start:
        worker = start("--drain-timeout", "30").ready()
        handles = [RunHandle(submit("sleeper", {"seconds": 1.5})) for _ in range(3)]
        for h in handles:
            wait_for(lambda h=h: running_on(h.run_id, worker.id), 15, "runs in hand")
        worker.signal(signal.SIGTERM)
        wait_for(
            lambda: any(w["state"] == "draining" for w in live_workers()),
            5,
            "the worker to report draining",
        )
        late = RunHandle(submit("sleeper", {"seconds": 0.1}))
        assert worker.wait(15) == 0
        assert [h.status for h in handles] == ["completed"] * 3
        assert all(record(h.run_id)["attempt"] == "1" for h in handles)
        assert late.status == "queued"  # a draining worker takes no new run
        assert "draining" in worker.log()
        start().ready()
        assert late.result(timeout=15) == 0.1


def _hand_back_mid_run(tmp_path: Path, workflow: str, steps: int) -> tuple[RunHandle, Any]:
    """Run ``workflow`` on a worker with a 0.5 s drain timeout, SIGTERM it mid-run with a
    second worker up; return the handle and the first worker."""
    with fleet(tmp_path) as start:
        first = start("--drain-timeout", "0.5").ready()
        handle = RunHandle(submit(workflow, {"n": steps, "delay": 0.2}))
        wait_for(lambda: len(journal_keys(handle.run_id)) >= 2, 15, "two journaled steps")
        second = start().ready()
        first.signal(signal.SIGTERM)
        assert first.wait(10) == 0
        exited_at = time.time()
        assert handle.result(timeout=30) == list(range(steps))
    rec = handle.record()
    assert exited_at < rec["ended_at"] - 1  # it left after the drain timeout, not the run
    assert rec["worker"] == second.id
    return handle, first


def test_drain_timeout_hands_runs_back_and_another_worker_resumes_them(tmp_path: Path) -> None:
    handle, first = _hand_back_mid_run(tmp_path, "steps", 30)
    assert handle.record()["restarts"] == 0  # a hand-back is no crash
    events = list(handle.events(follow=False))
    handbacks = [e for e in events if e.type == "log" and e.data.get("handback")]
    assert len(handbacks) == 1 and handbacks[0].data["worker"] == first.id
    assert [e.type for e in events].count("run.resumed") == 1
    key_of = {e.span_id: e.data["key"] for e in events if e.type == "span.started"}
    before = events[: events.index(handbacks[0])]
    journaled = {
        key_of[e.span_id] for e in before if e.type == "span.completed" and e.name == "step"
    }
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects and len(journaled) >= 2
    assert all(effects[key] == 1 for key in journaled)  # finished before: replayed, not re-run
    assert sum(effects.values()) <= 31  # only the step in flight ran again
    assert "handing back 1 run" in first.log()


def test_second_signal_stops_at_once_and_the_run_is_recovered_through_its_lease(
    tmp_path: Path,
) -> None:
    with fleet(tmp_path) as start:
        first = start("--drain-timeout", "60").ready()
        handle = RunHandle(submit("steps", {"n": 10, "delay": 0.3}))
        wait_for(lambda: journal_keys(handle.run_id), 15, "a journaled step")
        first.signal(signal.SIGTERM)
        time.sleep(0.3)
        first.signal(signal.SIGINT)
        assert first.wait(5) == 1
        second = start().ready()
        assert handle.result(timeout=20) == list(range(10))

    rec = handle.record()
    assert rec["worker"] == second.id and rec["restarts"] == 1
    assert "stopping at once" in first.log()
    assert JOURNALED_TWICE not in side_effects(handle.run_id)


def test_a_handed_back_sync_workflow_stops_on_the_old_worker(tmp_path: Path) -> None:
    """The thread running a sync workflow stops at its next step once the run is handed
    back, instead of running on beside the worker that resumed it."""
    handle, _first = _hand_back_mid_run(tmp_path, "sync_steps", 40)
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects
    assert len(effects) == 40 and sum(effects.values()) <= 41  # only the step in flight again
