"""Crash recovery with real worker processes and real SIGKILLs."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from aiflow_nb.access.handle import RunHandle
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops.submit import submit

from support.cluster import client_list
from support.ops import (
    Follower,
    Receiver,
    fleet,
    journal_keys,
    record,
    running_on,
    start_monitor,
    wait_for,
)


def test_sigkill_mid_run_resumes_on_the_other_worker_without_redoing_journaled_steps(
    tmp_path: Path,
) -> None:
    with fleet(tmp_path) as start:
        workers = [start(), start()]
        for w in workers:
            w.ready()
        handle = RunHandle(submit("steps", {"n": 8, "delay": 0.25}))
        follower = Follower(handle.run_id)
        follower.start()
        wait_for(lambda: len(journal_keys(handle.run_id)) >= 3, 15, "three journaled steps")
        holder = running_on(handle.run_id)
        victim = next(w for w in workers if w.id == holder)
        victim.kill()
        time.sleep(0.2)  # whatever the dead worker had sent has landed
        journaled_at_kill = journal_keys(handle.run_id)

        assert handle.result(timeout=20) == list(range(8))
        follower.join(5)

    rec = record(handle.run_id)
    survivor = next(w for w in workers if w is not victim)
    assert rec["worker"] == survivor.id
    assert (rec["attempt"], rec["restarts"]) == ("2", "1")
    events = list(handle.events(follow=False))
    types = [e.type for e in events]
    assert types.count("run.resumed") == 1 and types[-1] == "run.completed"
    replayed = {e.data["key"] for e in events if e.type == "span.replayed"}
    assert replayed == journaled_at_kill
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects
    assert all(effects[key] == 1 for key in journaled_at_kill)
    assert len(effects) == 8 and max(effects.values()) <= 2  # steps in flight: at least once
    # the reader that followed the run live saw every event, once, in order
    assert [e.id for e in follower.events] == [e.id for e in events]


def test_a_run_whose_workers_keep_dying_fails_crashed_and_a_notification_is_posted(
    tmp_path: Path,
) -> None:
    with Receiver(failures=1) as receiver, fleet(tmp_path) as start:
        env = {"AIFLOW_NOTIFY_URL": receiver.url}
        workers = [start("--max-restarts", "2", env=env) for _ in range(2)]
        for w in workers:
            w.ready()
        handle = RunHandle(submit("steps", {"n": 200, "delay": 0.1}))
        dead: set[str] = set()

        def live_holder() -> str | None:
            if handle.status == "failed":
                return "failed"
            holder = running_on(handle.run_id)
            return holder if holder not in dead else None

        kills = 0
        while kills < 5:
            holder = wait_for(live_holder, 20, "the run to be running on a live worker")
            if holder == "failed":
                break
            victim = next(w for w in workers if w.id == holder)
            victim.kill()
            dead.add(victim.id)
            kills += 1
            workers.remove(victim)
            workers.append(start("--max-restarts", "2", env=env).ready())
            time.sleep(0.1)
        assert handle.wait(timeout=20) == "failed"
        wait_for(lambda: receiver.bodies, 15, "the notification POST")

    rec = handle.record()
    assert kills == 3  # two restarts, then the third crash ends it
    assert (rec["status"], rec["reason"], rec["restarts"]) == ("failed", "crashed", 2)
    assert rec["error"]["type"] == "WorkerCrashed"
    events = list(handle.events(follow=False))
    assert [e.type for e in events[-2:]] == ["notification", "run.failed"]
    assert events[-1].data["reason"] == "crashed"
    assert events[-2].data["run_id"] == handle.run_id
    body = receiver.bodies[0]
    assert {k: body[k] for k in ("run_id", "workflow", "status", "reason")} == {
        "run_id": handle.run_id,
        "workflow": "steps",
        "status": "failed",
        "reason": "crashed",
    }
    assert receiver.requests >= 2  # the first POST got a 503 and was retried


def test_standalone_monitor_process_recovers_runs_of_workers_without_one(
    tmp_path: Path,
) -> None:
    """``aiflow monitor`` alone does the recovering when workers run with ``--no-monitor``."""
    with fleet(tmp_path) as start:
        workers = [start("--no-monitor").ready(), start("--no-monitor").ready()]
        handle = RunHandle(submit("steps", {"n": 6, "delay": 0.25}))
        wait_for(lambda: journal_keys(handle.run_id), 15, "a journaled step")
        victim = next(w for w in workers if w.id == running_on(handle.run_id))
        victim.kill()
        time.sleep(2.0)  # well past the TTL: with no monitor running, nothing happens
        assert handle.status == "running" and record(handle.run_id)["restarts"] == "0"
        monitor = start_monitor(tmp_path)
        try:
            assert handle.result(timeout=20) == list(range(6))
        finally:
            monitor.terminate()
        assert monitor.wait(10) == 0
    assert record(handle.run_id)["restarts"] == "1"


def test_a_queue_entry_reclaimed_while_its_worker_was_stopped_is_skipped_after_sigcont(
    tmp_path: Path,
) -> None:
    """A worker SIGSTOPped in its blocked read gets a run's queue entry; the monitor finds
    the worker dead and re-queues the run (acking and deleting that entry). SIGCONTed, the
    worker reads the stale entry from its socket: it must skip it and take the run from
    the monitor's entry. (Taking it with the stale one goes behind the monitor's back:
    in the extended soak a woken worker took over a run whose next attempt had just died,
    with no recovery and no restart counted.)"""
    from aiflow_nb import keys
    from aiflow_nb.ops.routing import run_queue
    from aiflow_nb.ops.submit import resolve_version
    from aiflow_nb.store import sync_redis

    r = sync_redis()
    queue = run_queue(resolve_version(), "steps", None)
    fast = {"AIFLOW_HEARTBEAT_INTERVAL": "0.1", "AIFLOW_HEARTBEAT_TTL": "0.6"}

    def consumers() -> dict[str, int]:
        return {
            c["name"].decode(): int(c["pending"])
            for c in r.xinfo_consumers(queue, keys.queue_group)
        }

    def reading() -> bool:  # its consumer exists, and it waits in a blocked read
        blocked = [c["cmd"] for c in client_list(r) if "b" in str(c["flags"])]
        return stale.id in consumers() and "xreadgroup" in blocked

    monitor = start_monitor(tmp_path)
    try:
        with fleet(tmp_path) as start:
            stale = start("--no-monitor", env=fast).ready()
            wait_for(reading, 10, "the worker's blocked read")
            stale.signal(signal.SIGSTOP)  # the read it waits in gets the entry
            try:
                handle = RunHandle(submit("steps", {"n": 2, "delay": 0.1}))
                wait_for(lambda: consumers().get(stale.id), 5, "the stopped worker's read")
                wait_for(lambda: not consumers().get(stale.id), 15, "the monitor's re-queue")
            finally:  # within redis-py's 5 s read timeout: it reads the reply it was sent
                stale.signal(signal.SIGCONT)
            assert handle.result(timeout=15) == [0, 1]
            log = stale.log()
    finally:
        monitor.kill()
        monitor.wait(10)

    types = [e.type for e in handle.events(follow=False)]
    assert types[:3] == ["run.queued", "log", "run.started"] and "run.resumed" not in types
    assert "reclaimed" in log and "held by another worker" not in log, log
