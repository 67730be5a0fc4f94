"""``aiflow worker`` / ``aiflow workers`` as real processes: burst, concurrency, listing,
cancellation through Redis, a start before Redis is up."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import aiflow_nb
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.cli import cli
from aiflow_nb.ops.presence import live_workers
from aiflow_nb.ops.signals import DUMP
from aiflow_nb.ops.submit import submit
from aiflow_nb.store.connection import reset
from aiflow_nb.store.embedded import EmbeddedRedis

from support.ops import fleet, running_on, wait_for


def test_burst_worker_runs_many_runs_concurrently_then_exits(tmp_path: Path) -> None:
    handles = [RunHandle(submit("sleeper", {"seconds": 1.0})) for _ in range(20)]
    with fleet(tmp_path) as start:
        worker = start("--burst", "--concurrency", "32")
        assert worker.wait(60) == 0
    records = [h.record() for h in handles]
    assert [r["status"] for r in records] == ["completed"] * 20
    # all 20 one-second runs were in hand at once, on one loop: each started before any ended
    assert max(r["started_at"] for r in records) < min(r["ended_at"] for r in records)
    assert "stopped after 20 run(s)" in worker.log()


def test_workers_lists_live_workers_with_state_and_runs_in_hand(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["workers"]).output.strip() == "no live workers"
    with fleet(tmp_path) as start:
        worker = start("--version", "blue", "--drain-timeout", "30").ready()
        handle = RunHandle(submit("sleeper", {"seconds": 2.0}, version="blue"))
        wait_for(lambda: running_on(handle.run_id, worker.id), 15, "the run in hand")

        def row() -> list[str] | None:
            out = runner.invoke(cli, ["workers"]).output
            cells = next(line for line in out.splitlines() if line.startswith(worker.id)).split()
            return cells if cells[5] == "1" else None  # once a heartbeat reports the run

        row = wait_for(row, 5, "the listing to show the run in hand")
        assert row[2:6] == [str(worker.pid), "blue", "active", "1"]
        assert row[6].endswith("s") and row[7] == "ago"
        worker.signal(signal.SIGTERM)
        wait_for(
            lambda: " draining " in runner.invoke(cli, ["workers"]).output,
            5,
            "the listing to show draining",
        )
        try:
            assert worker.wait(10) == 0
        except AssertionError as exc:  # say where the run stood (clean-clone CI saw it once)
            events = [e.type for e in handle.events(follow=False)]
            raise AssertionError(f"{exc}\nthe run: {handle.status}, events {events}") from None
    assert runner.invoke(cli, ["workers", "--version", "blue"]).output.strip() == "no live workers"


def test_cancel_reaches_the_worker_process_running_the_run(tmp_path: Path) -> None:
    with fleet(tmp_path) as start:
        worker = start().ready()
        handle = RunHandle(submit("sleeper", {"seconds": 60}))
        wait_for(lambda: running_on(handle.run_id, worker.id), 15, "the run in hand")
        assert handle.cancel() == "cancelling"
        assert handle.wait(timeout=5) == "cancelled"
        assert worker.proc.poll() is None  # the worker goes on
        follow_up = RunHandle(submit("sleeper", {"seconds": 0.1}))
        assert follow_up.result(timeout=10) == 0.1
    types = [e.type for e in handle.events(follow=False)]
    assert types[-1] == "run.cancelled" and "run.failed" not in types


@pytest.mark.own_redis
def test_a_worker_started_before_its_redis_waits_for_it_then_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = EmbeddedRedis(tmp_path / "late")  # its socket is named, nothing listens yet
    monkeypatch.setenv("REDIS_URL", late.url)
    aiflow_nb.configure()
    with fleet(tmp_path) as start:
        stopped, waiting = start(), start()
        for worker in (stopped, waiting):
            wait_for(lambda w=worker: "Redis unreachable" in w.log(), 30, "the outage log line")
        stopped.signal(signal.SIGTERM)  # a signal ends the wait: a clean exit, nothing left
        assert stopped.wait(30) == 0
        assert waiting.proc.poll() is None  # still waiting, not failed
        server = late.spawn()
        try:
            waiting.ready(30)
            assert "Redis is back" in waiting.log()
            handle = RunHandle(submit("sleeper", {"seconds": 0.1}))
            wait_for(lambda: handle.record()["status"] == "completed", 30, "the run to complete")
            assert handle.record()["worker"] == waiting.id
            assert [w["id"] for w in live_workers()] == [waiting.id]  # the stopped one never beat
        finally:
            waiting.stop()
            server.terminate()
            server.wait(10)
            reset()


def test_sigusr1_writes_the_workers_thread_and_task_stacks_and_it_goes_on(tmp_path: Path) -> None:
    with fleet(tmp_path) as start:
        worker = start().ready()
        handle = RunHandle(submit("sleeper", {"seconds": 1.0}))
        wait_for(lambda: running_on(handle.run_id, worker.id), 15, "the run in hand")
        worker.signal(DUMP)
        log = wait_for(
            lambda: text if "asyncio task(s)" in (text := worker.log()) else None,
            5,
            "the stacks in the log",
        )
        assert "Current thread" in log and "run_forever" in log  # the threads, C level
        assert "in _consume" in log and "in _heartbeat_loop" in log  # the tasks
        assert "in nap" in log  # the run in hand, at its await
        assert handle.result(timeout=15) == 1.0  # the dump stopped nothing
        worker.signal(signal.SIGTERM)
        assert worker.wait(15) == 0
