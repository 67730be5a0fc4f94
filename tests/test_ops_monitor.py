"""The monitor's decisions on real Redis state (the dead workers here are queue consumers
with no heartbeat; the tests with real killed processes are in test_ops_recovery.py),
and the notifier's retries against a real local HTTP server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiflow_nb import keys
from aiflow_nb.ops.monitor import Monitor
from aiflow_nb.ops.notify import Notifier
from aiflow_nb.store import async_redis, run_in_new_loop, sync_redis

from support.ops import Receiver, taken_by_dead_worker


def _sweep(*monitors: Monitor) -> list[list[Any]]:
    async def go() -> list[list[Any]]:
        client = async_redis()
        for m in monitors:
            m._client = client
        results = [await m.sweep() for m in monitors]
        for m in monitors:
            await m.release()
        return results

    return run_in_new_loop(go())


def _queue_requests() -> list[dict[bytes, bytes]]:
    return [fields for _, fields in sync_redis().xrange(keys.queue("default", "steps", 0))]


def test_dead_workers_run_is_requeued_once_and_its_pending_entry_dropped() -> None:
    handle = taken_by_dead_worker()
    first, second = _sweep(Monitor(), Monitor())
    assert [(r.run_id, r.outcome, r.restarts) for r in first] == [(handle.run_id, "requeued", 1)]
    assert second == []  # the lock was held by the first monitor during its sweep
    rec = handle.record()
    assert (rec["status"], rec["restarts"]) == ("queued", 1)
    assert _queue_requests() == [{b"run_id": handle.run_id.encode(), b"resume": b"1"}]
    pending = sync_redis().xpending(keys.queue("default", "steps", 0), keys.queue_group)
    assert pending["pending"] == 0
    assert _sweep(Monitor()) == [[]]  # nothing left to do; the ghost consumer is deleted
    assert sync_redis().xinfo_consumers(keys.queue("default", "steps", 0), keys.queue_group) == []
    last = list(handle.events(follow=False))[-1]
    assert last.type == "log" and last.data["recovered"] is True


def test_a_run_whose_lease_is_held_is_left_alone() -> None:
    handle = taken_by_dead_worker()
    sync_redis().set(keys.run_lease(handle.run_id), "someone-alive", px=5000)
    assert _sweep(Monitor()) == [[]]
    assert handle.status == "running"
    assert (
        sync_redis().xpending(keys.queue("default", "steps", 0), keys.queue_group)["pending"] == 1
    )


def test_running_run_without_lease_or_queue_entry_is_recovered() -> None:
    handle = taken_by_dead_worker()
    r = sync_redis()
    r.xack(
        keys.queue("default", "steps", 0),
        keys.queue_group,
        r.xrange(keys.queue("default", "steps", 0))[0][0],
    )  # only {ns}:running remembers it
    [results] = _sweep(Monitor())
    assert [(x.run_id, x.outcome) for x in results] == [(handle.run_id, "requeued")]


def test_past_max_restarts_the_run_fails_crashed_and_the_notification_is_retried() -> None:
    handle = taken_by_dead_worker(restarts=3)
    with Receiver(failures=2) as receiver:
        waits: list[float] = []

        async def no_sleep(seconds: float) -> None:
            waits.append(seconds)

        async def go() -> None:
            monitor = Monitor(
                async_redis(),
                max_restarts=3,
                notifier=Notifier(receiver.url, backoff=0.5, sleep=no_sleep),
            )
            [result] = await monitor.sweep()
            assert result.outcome == "crashed"
            assert monitor.notifier.pending == 1  # sent in the background
            await monitor.notifier.aclose()
            assert monitor.notifier.delivered == 1

        run_in_new_loop(go())
    assert receiver.requests == 3 and waits == [0.5, 1.0]
    assert receiver.bodies[0]["run_id"] == handle.run_id
    assert receiver.bodies[0]["reason"] == "crashed"
    rec = handle.record()
    assert (rec["status"], rec["reason"]) == ("failed", "crashed")
    assert not sync_redis().sismember(keys.running(0), handle.run_id)
    assert _queue_requests() == []  # not re-queued


def test_notifier_gives_up_without_blocking_when_nobody_listens() -> None:
    async def go() -> tuple[float, Notifier]:
        notifier = Notifier("http://127.0.0.1:9/nothing-here", attempts=2, backoff=0.01)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        notifier.send({"run_id": "x"})
        sent_in = loop.time() - t0
        await notifier.aclose(timeout=10)
        return sent_in, notifier

    sent_in, notifier = asyncio.run(go())
    assert sent_in < 0.01
    assert (notifier.delivered, notifier.given_up) == (0, 1)


def test_monitor_once_command_prints_what_it_recovered() -> None:
    from click.testing import CliRunner

    from aiflow_nb.cli import cli

    handle = taken_by_dead_worker()
    result = CliRunner().invoke(cli, ["monitor", "--once"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [handle.run_id, "requeued", "restarts=1"]
    assert CliRunner().invoke(cli, ["monitor", "--once"]).output == ""


def test_hand_back_of_a_run_another_worker_took_over_only_acks_its_entry() -> None:
    """A draining worker that stalled past its lease must not re-queue (or free the lease
    of) a run the monitor already gave to another worker."""
    from aiflow_nb.ops.recovery import hand_back

    handle = taken_by_dead_worker()
    r = sync_redis()
    queue = keys.queue("default", "steps", 0)
    entry_id = r.xpending_range(queue, keys.queue_group, "-", "+", 1)[0]["message_id"]
    r.set(keys.run_lease(handle.run_id), "other-worker")

    async def go() -> str:
        return await hand_back(
            async_redis(), handle.run_id, "ghost-worker", (queue, entry_id.decode())
        )

    assert run_in_new_loop(go()) == "lost"
    assert r.get(keys.run_lease(handle.run_id)) == b"other-worker"
    assert handle.record()["status"] == "running"
    assert _queue_requests() == []
    assert r.xpending(queue, keys.queue_group)["pending"] == 0


def _orphaned() -> str:
    """A run taken by a worker that vanished, its queue entry gone: only the run's
    records (running set, lease deadline) remember it."""
    handle = taken_by_dead_worker()
    r = sync_redis()
    queue = keys.queue("default", "steps", 0)
    entry = next(i for i, f in r.xrange(queue) if f[b"run_id"] == handle.run_id.encode())
    r.xack(queue, keys.queue_group, entry)
    return handle.run_id


def test_a_sweep_reads_the_lease_deadlines_not_every_running_run() -> None:
    r = sync_redis()
    lapsed = _orphaned()
    unindexed = _orphaned()
    r.zrem(keys.lease_deadlines(0), unindexed)  # running, but no lease deadline recorded
    held = _orphaned()
    r.set(keys.run_lease(held), "w/1", px=60_000)  # its lease renewed behind the index
    monitor = Monitor()
    monitor._scanned = time.monotonic()  # the full scan of running runs is not due
    [results] = _sweep(monitor)
    assert [(x.run_id, x.outcome) for x in results] == [(lapsed, "requeued")]
    assert r.zscore(keys.lease_deadlines(0), lapsed) is None  # dropped once recovered
    assert float(r.zscore(keys.lease_deadlines(0), held) or 0) > time.time() + 50  # moved
    assert r.hget(keys.run(unindexed), "status") == b"running"  # not read this sweep
    monitor._scanned = -float("inf")  # the safety net's full scan finds it
    [results] = _sweep(monitor)
    assert [(x.run_id, x.outcome) for x in results] == [(unindexed, "requeued")]
