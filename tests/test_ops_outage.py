"""Redis outages are survivable: a real redis-server of the test's own (AOF, ``everysec``)
SIGKILLed mid-flight and restarted 5 s later on the same AOF, with real worker processes,
a real API server, a RunHandle reader in a thread, SSE clients and ``aiflow attach``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

import aiflow_nb
from aiflow_nb import defaults, keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.api import ServerThread, create_app
from aiflow_nb.events.model import Event
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.notebook import RunWidget
from aiflow_nb.ops.local import LocalWorker
from aiflow_nb.ops.submit import resolve_version, submit
from aiflow_nb.ops.worker import Worker
from aiflow_nb.store import async_redis, run_in_new_loop, sync_redis
from aiflow_nb.store.outage import CONNECTION_ERRORS, Outage
from aiflow_nb.trace.follow import Follower

from support import PYTHONPATH
from support.api import KEY
from support.helpers import wait_for
from support.notebook import RecordingComm, comms_fixture  # noqa: F401
from support.ops import CLI, fleet, journal_keys, record
from support.outage import PrivateRedis, SseFollower, private_redis_fixture  # noqa: F401

RUNS, STEPS, DELAY, OUTAGE = 30, 10, 0.3, 5.0
WORKER_ENV = {"AIFLOW_HEARTBEAT_INTERVAL": "0.5", "AIFLOW_HEARTBEAT_TTL": "10"}
"""The default lease TTL (10 s) outlives the 5 s outage: the workers keep their runs."""


def _key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


def _increasing(ids: list[str]) -> bool:
    return all(_key(a) < _key(b) for a, b in zip(ids, ids[1:], strict=False))


class HandleReader(threading.Thread):
    """``RunHandle.events()`` in a thread, keeping what it yields."""

    def __init__(self, run_id: str) -> None:
        super().__init__(daemon=True)
        self.handle = RunHandle(run_id)
        self.events: list[Event] = []

    def run(self) -> None:
        for event in self.handle.events():
            self.events.append(event)


def _attach(run_id: str, log_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "AIFLOW_LOCAL_WORKER": "0"}
    env["PYTHONUNBUFFERED"] = "1"  # its lines reach the log as printed
    with open(log_dir / "attach.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", CLI, "attach", run_id], env=env, stdout=out, stderr=out
        )


def _answers_503(base_url: str, run_id: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        return c.get(f"/runs/{run_id}", timeout=10)


def _first_event_after(run_ids: list[str], at: float) -> float:
    """``time.time()`` of the first event written after ``at`` (ids are ms timestamps)."""
    r, start = sync_redis(), f"{int(at * 1000)}-0"
    firsts = [r.xrange(keys.run_events(i), min=start, max="+", count=1) for i in run_ids]
    return min(_key(e[0][0].decode())[0] for e in firsts if e) / 1000


def _check_run(handle: RunHandle) -> list[str]:
    """The run completed once, with every step's result; its stream's ids."""
    events = list(handle.events(follow=False))
    types = Counter(e.type for e in events)
    failed = [e.data for e in events if e.type.endswith(".failed")]
    assert types["run.completed"] == 1 and events[-1].type == "run.completed", (types, failed)
    assert not (types["run.failed"] or types["run.cancelled"]), types
    assert handle.result(timeout=1) == list(range(STEPS))
    done = [e.span_id for e in events if e.type == "span.completed" and e.name == "step"]
    assert len(done) == len(set(done)), f"{handle.run_id}: a span completed twice"
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects and len(effects) == STEPS, effects
    assert len(journal_keys(handle.run_id)) == STEPS, "a journaled step is missing"
    return [e.id for e in events]


def _saw_the_rest(seen: list[str], stream: list[str], who: str) -> None:
    """A follower saw every event of the final stream once, in order (it may also have
    seen a tail the crash lost: the contract)."""
    assert len(seen) == len(set(seen)) and _increasing(seen), f"{who}: duplicate or disorder"
    missing = set(stream) - set(seen)
    assert not missing, f"{who}: a gap, {len(missing)} event(s) never seen"


@pytest.mark.slow
@pytest.mark.parametrize("ttl", ["10", "1.5"], ids=["leases-outlive-it", "leases-expire"])
def test_redis_sigkilled_and_restarted_on_its_aof_loses_no_run(
    private_redis: PrivateRedis, tmp_path: Path, ttl: str
) -> None:
    r = sync_redis()
    assert r.config_get("appendfsync")["appendfsync"] == "everysec"
    assert r.config_get("appendonly")["appendonly"] == "yes"
    server = ServerThread(create_app(api_keys=(KEY,), keepalive=0.2, sse_retry_ms=100)).start()
    try:
        with fleet(tmp_path) as start:
            workers = [start(env={**WORKER_ENV, "AIFLOW_HEARTBEAT_TTL": ttl}) for _ in range(2)]
            for w in workers:
                w.ready()
            handles = [
                RunHandle(submit("steps", {"n": STEPS, "delay": DELAY})) for _ in range(RUNS)
            ]
            readers = [HandleReader(h.run_id) for h in handles[:3]]
            sse = [SseFollower(server.url, h.run_id) for h in handles[3:6]]
            for t in [*readers, *sse]:
                t.start()
            attach = _attach(handles[6].run_id, tmp_path)
            attached = tmp_path / "attach.log"
            wait_for(lambda: "run.started" in attached.read_text(), 30, "attach to follow")
            wait_for(lambda: sum(len(side_effects(h.run_id)) for h in handles) >= RUNS, 30, "steps")

            private_redis.kill()
            down_at = time.monotonic()
            refused = _answers_503(server.url, handles[0].run_id)
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
            private_redis.restart()

            for h in handles:  # every run completes, within 60 s, without a new worker
                h.wait(timeout=max(0.1, 60 - (time.time() - private_redis.back_at)))
            recovery = _first_event_after([h.run_id for h in handles], private_redis.back_at)
            assert all(w.proc.poll() is None for w in workers), "a worker exited"
            assert attach.wait(30) == 0, attached.read_text()
            for t in [*readers, *sse]:
                t.join(30)
                assert not t.is_alive()
            logs = [w.log() for w in workers]
    finally:
        server.stop()

    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.json()["error"] == "redis_unavailable"
    streams = {h.run_id: _check_run(h) for h in handles}
    resumed = sum(record(h.run_id).get("attempt", "1") != "1" for h in handles)
    if ttl == "10":  # leases outlive a 5 s outage with the default TTL: no run resumed
        assert resumed == 0, resumed
    # a 1.5 s TTL expires during the outage: each run is then either resumed from its journal
    # by the monitor or taken back by its own attempt (the lease was free and its fence still
    # named that attempt), whichever acts first; both keep every invariant checked here
    print(f"ttl {ttl}: {resumed} of {RUNS} runs resumed from their journal")
    for reader in readers:
        _saw_the_rest([e.id for e in reader.events], streams[reader.handle.run_id], "handle")
    for follower in sse:
        assert follower.ended
        _saw_the_rest(follower.ids, streams[follower.run_id], "SSE")
    # each SSE stream cut by the outage said so, then resumed with Last-Event-ID
    assert all(f.interrupted for f in sse)
    assert {doc["error"] for f in sse for doc in f.interrupted} == {"redis_unavailable"}
    assert "run.completed" in attached.read_text()
    for log in logs:  # one line when Redis went away, one when it was back, per loop
        assert log.count("consume: Redis unreachable") == 1, log
        assert log.count("consume: Redis is back") == 1, log
    back = recovery - private_redis.back_at
    assert 0 <= back < 5, f"first event {back:.3f} s after Redis was back"
    print(f"outage recovery: first event {back:.3f} s after Redis is back")


def test_an_outage_logs_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    outage = Outage("reader", clock=lambda: now[0], base=0.1, cap=1.0)
    with caplog.at_level(logging.WARNING, logger="aiflow_nb.redis"):
        waits = []
        for _ in range(20):
            waits.append(outage.failed(ConnectionError("refused")))
            now[0] += 1
        outage.ok()
        outage.ok()
    assert all(0 <= w <= 1.0 for w in waits) and len(set(waits)) > 1  # jittered, capped
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "reader: Redis unreachable (refused)" in lines[0]
    assert "reader: Redis is back after 20.0 s" in lines[1]
    assert not outage.down


def test_past_its_patience_an_outage_raises_redis_unavailable() -> None:
    now = [0.0]
    outage = Outage("stream", patience=1.0, clock=lambda: now[0])
    outage.failed(ConnectionError("refused"))
    now[0] = 1.0
    with pytest.raises(aiflow_nb.errors.RedisUnavailable, match="refused"):
        outage.failed(ConnectionError("refused"))


def test_an_api_stream_cut_by_an_outage_says_so_and_resumes_after_its_last_event(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    handle = RunHandle(submit("steps", {"n": 3, "delay": 0.05}))  # queued: no worker yet
    server = ServerThread(create_app(api_keys=(KEY,), keepalive=0.2, sse_retry_ms=100)).start()
    auth = {"Authorization": f"Bearer {KEY}"}
    url = f"/runs/{handle.run_id}/events?format=ndjson"
    try:
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as c:
            with c.stream("GET", url) as r:
                lines = r.iter_lines()
                first = json.loads(next(lines))
                private_redis.kill()
                rest = [json.loads(line) for line in lines if line]  # ends: a clean close
            refused = c.get(f"/runs/{handle.run_id}")
            private_redis.restart()
            with fleet(tmp_path) as start:
                start().ready()
                assert handle.wait(timeout=30) == "completed"
            resumed = c.get(f"{url}&after={first['id']}")
    finally:
        server.stop()
    assert first["type"] == "run.queued" and rest[-1]["error"] == "redis_unavailable"
    assert rest[-1]["status"] == 503 and "Last-Event-ID" in rest[-1]["message"]
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    after = [e.id for e in handle.events(after=first["id"], follow=False)]
    docs = [json.loads(line) for line in resumed.text.splitlines() if line]
    assert [d["id"] for d in docs] == after and docs[-1]["type"] == "run.completed"


class _Recording(Worker):
    """A worker whose ``cancel_run`` records the run ids it is asked to cancel."""

    def __init__(self) -> None:
        super().__init__(monitor=False)
        self.cancelled: list[str] = []

    def cancel_run(self, run_id: str, reason: str = "cancel") -> bool:
        self.cancelled.append(run_id)
        return True


async def _until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 15
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_the_cancel_listener_subscribes_again_after_a_redis_restart(
    private_redis: PrivateRedis,
) -> None:
    async def main() -> list[str]:
        worker = _Recording()
        worker.client = client = async_redis()
        channel = keys.cancel_channel()

        async def subscribed() -> bool:
            try:
                return bool((await client.pubsub_numsub(channel))[0][1])
            except CONNECTION_ERRORS:
                return False

        async def got_before() -> bool:
            return worker.cancelled == ["before"]

        async def got_after() -> bool:
            return worker.cancelled == ["before", "after"]

        listener = asyncio.create_task(worker._cancel_listener())
        try:
            await _until(subscribed, "the listener to subscribe")
            await client.publish(channel, "before")
            await _until(got_before, "the first cancel")
            await asyncio.to_thread(private_redis.kill)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(private_redis.restart)
            await _until(subscribed, "the listener to subscribe again")
            await client.publish(channel, "after")
            await _until(got_after, "the cancel after the restart")
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        return worker.cancelled

    assert run_in_new_loop(main()) == ["before", "after"]


def test_every_client_retries_with_jittered_backoff() -> None:
    async def async_retry() -> object:
        return async_redis().get_retry()

    for retry in (sync_redis().get_retry(), run_in_new_loop(async_retry())):
        assert isinstance(retry, Retry | AsyncRetry)
        assert retry._retries == defaults.REDIS_RETRIES
        assert isinstance(retry._backoff, ExponentialWithJitterBackoff)


def test_the_in_process_worker_the_widget_and_async_readers_live_through_a_redis_restart(
    private_redis: PrivateRedis, comms: list[RecordingComm]
) -> None:
    local = LocalWorker(kind="in-process").start()
    try:
        handle = RunHandle(submit("steps", {"n": 8, "delay": 0.2}))
        seen: list[str] = []

        async def read() -> None:
            async for event in handle.aevents():
                seen.append(event.id)

        reader = threading.Thread(target=run_in_new_loop, args=(read(),), daemon=True)
        reader.start()
        follower = Follower(handle.run_id, block_ms=200).start()  # the dashboard's reader
        widget = RunWidget(handle)
        wait_for(lambda: len(side_effects(handle.run_id)) >= 2, 15, "two steps")
        private_redis.kill()
        time.sleep(2)
        private_redis.restart()
        assert handle.result(timeout=30) == list(range(8))
        reader.join(15)
        wait_for(lambda: not follower.alive, 15, "the Follower to end with the run")
        assert local.alive and not reader.is_alive() and follower.error is None
        state = widget.wait(15)
        widget.close()
    finally:
        local.stop()
    stream = [e.id for e in handle.events(follow=False)]
    assert widget.failure is None and state.status == "completed"
    assert state.events == len(stream) and state.output == list(range(8))
    _saw_the_rest(seen, stream, "aevents")
    _saw_the_rest([e.id for e in follower.drain()], stream, "trace Follower")


def test_a_queue_entry_delivered_by_a_read_whose_reply_was_lost_is_taken_by_its_consumer(
    private_redis: PrivateRedis,
) -> None:
    """New reads (``>``) never deliver such an entry again and the monitor reclaims only dead
    consumers' entries: the worker looks at its own pending entries at start, after an
    outage its loop saw, and every UNANSWERED_CHECK_INTERVAL (a client retry can hide one)."""
    r = sync_redis()
    handle = RunHandle(submit("steps", {"n": 2, "delay": 0.0}))
    queue = next(q for q in r.smembers(keys.queues(resolve_version(), 0)) if b"steps" in q)
    r.xgroup_create(queue, keys.queue_group, id="0")
    # the server delivered the entry to this consumer, and its reply never arrived
    assert r.xreadgroup(keys.queue_group, "w-cut", {queue: ">"})
    local = LocalWorker(worker_id="w-cut", kind="in-process").start()
    try:
        assert handle.result(timeout=20) == [0, 1]
        later = RunHandle(submit("steps", {"n": 2, "delay": 0.2}))
        private_redis.kill()
        time.sleep(0.5)
        private_redis.restart()
        assert later.result(timeout=20) == [0, 1]
    finally:
        local.stop()
