"""``recover`` and ``hand_back`` are Lua scripts: atomic, no WATCH (unusable on an async
Redis Cluster client), and the events they write carry what only the script read (the
dead worker, the restart count) filled in. Real Redis; the server's own command counts
(``INFO commandstats``) say which commands ran."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiflow_nb import keys
from aiflow_nb.ops import recovery
from aiflow_nb.ops.recovery import Recovery, hand_back, recover
from aiflow_nb.store import async_redis, run_in_new_loop, sync_redis

from support.commandstats import calls, commands_since
from support.ops import taken_by_dead_worker

QUEUE = ("default", "steps")


@pytest.fixture(autouse=True)
def _loaded() -> None:
    """The scripts are known to Redis (as after their first use), so each call below is
    one EVALSHA."""
    for script in (recovery._RECOVER, recovery._HAND_BACK):
        sync_redis().script_load(script)


def _entry() -> tuple[str, str]:
    queue = keys.queue(*QUEUE, 0)
    pending = sync_redis().xpending_range(queue, keys.queue_group, "-", "+", 1)
    return queue, pending[0]["message_id"].decode()


def _recover(run_id: str, max_restarts: int, entry: tuple[str, str] | None) -> Recovery:
    async def go() -> Recovery:
        return await recover(async_redis(), run_id, max_restarts=max_restarts, entry=entry)

    return run_in_new_loop(go())


def _last_events(run_id: str, n: int) -> list[dict[str, Any]]:
    rows = sync_redis().xrange(keys.run_events(run_id))[-n:]
    return [json.loads(fields[b"e"]) for _, fields in rows]


def test_recover_requeues_in_one_script_without_watch_naming_the_worker_and_restart() -> None:
    handle = taken_by_dead_worker(restarts=1)
    worker = 'host "x"\\é-1'  # needs escaping in JSON
    sync_redis().hset(keys.run(handle.run_id), "worker", worker)
    entry = _entry()
    before = calls()

    result = _recover(handle.run_id, 3, entry)

    ran = commands_since(before)
    assert (result.outcome, result.restarts) == ("requeued", 2)
    assert ran.get("evalsha") == 1 and "eval" not in ran
    assert "watch" not in ran and "multi" not in ran and "exec" not in ran
    note = _last_events(handle.run_id, 1)[0]
    assert note["type"] == "log"
    assert note["data"]["message"] == (
        f"worker {worker} stopped heartbeating: run re-queued (restart 2 of at most 3)"
    )
    assert (note["data"]["worker"], note["data"]["restarts"]) == (worker, 2)
    rec = handle.record()
    assert (rec["status"], rec["restarts"]) == ("queued", 2)
    r = sync_redis()
    assert r.xpending(entry[0], keys.queue_group)["pending"] == 0
    assert [f for _, f in r.xrange(entry[0])] == [
        {b"run_id": handle.run_id.encode(), b"resume": b"1"}
    ]


def test_recover_past_max_restarts_fails_the_run_crashed_with_the_counts_filled_in() -> None:
    handle = taken_by_dead_worker(restarts=2)
    before = calls()

    result = _recover(handle.run_id, 2, _entry())

    ran = commands_since(before)
    assert "watch" not in ran and "exec" not in ran
    assert (result.outcome, result.restarts) == ("crashed", 2)
    message = "the run's worker died 3 times (last: ghost-worker); max_restarts=2 reached"
    assert result.notification["message"] == message
    assert result.notification["restarts"] == 2
    notification, failed = _last_events(handle.run_id, 2)
    assert notification["type"] == "notification"
    assert (notification["data"]["message"], notification["data"]["restarts"]) == (message, 2)
    assert failed["type"] == "run.failed"
    assert (failed["data"]["restarts"], failed["data"]["error"]["message"]) == (2, message)
    rec = handle.record()
    assert (rec["status"], rec["reason"], rec["error"]["message"]) == ("failed", "crashed", message)
    r = sync_redis()
    assert not r.sismember(keys.running(0), handle.run_id)
    assert 0 < r.pttl(keys.run(handle.run_id))  # expires after its retention
    assert r.zscore(keys.expiry(0), f"{handle.run_id} steps") is not None


def test_recover_leaves_a_held_run_alone() -> None:
    held = taken_by_dead_worker()
    sync_redis().set(keys.run_lease(held.run_id), "alive/1", px=5000)
    assert _recover(held.run_id, 3, _entry()).outcome == "held"
    assert held.status == "running"
    assert sync_redis().xpending(keys.queue(*QUEUE, 0), keys.queue_group)["pending"] == 1


def test_recover_of_an_ended_run_only_acks_its_entry() -> None:
    ended = taken_by_dead_worker(status="completed")
    entry = _entry()
    assert _recover(ended.run_id, 3, entry).outcome == "ended"
    assert ended.status == "completed"
    assert sync_redis().xpending(entry[0], keys.queue_group)["pending"] == 0


def test_hand_back_requeues_in_one_script_without_watch() -> None:
    handle = taken_by_dead_worker()
    token = "draining-worker/ab12"
    r = sync_redis()
    r.set(keys.run_lease(handle.run_id), token, px=5000)
    entry = _entry()
    before = calls()

    async def go() -> str:
        return await hand_back(async_redis(), handle.run_id, token, entry, ("default", "steps", ""))

    assert run_in_new_loop(go()) == "requeued"

    ran = commands_since(before)
    assert ran.get("evalsha") == 1 and "eval" not in ran
    assert ran.get("hmget") == 1  # the script's own: the route was given, not read
    assert "watch" not in ran and "exec" not in ran
    assert r.get(keys.run_lease(handle.run_id)) is None
    assert handle.record()["status"] == "queued"
    note = _last_events(handle.run_id, 1)[0]
    assert note["data"]["handback"] is True and note["data"]["worker"] == "draining-worker"
    assert r.xpending(entry[0], keys.queue_group)["pending"] == 0
    assert [f for _, f in r.xrange(entry[0])] == [
        {b"run_id": handle.run_id.encode(), b"resume": b"1"}
    ]
