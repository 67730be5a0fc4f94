"""Fenced writes against a real redis-server: a batch applies only while its attempt's
token is current, a re-sent batch applies once, a terminal status is never written over,
and the writer keeps its unsent batches (in order) across a Redis restart."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio as aredis

from aiflow_nb import defaults, keys
from aiflow_nb.events.fence import DUPLICATE, ENDED, LOST, OK, Fence, new_token
from aiflow_nb.events.model import FIELD
from aiflow_nb.events.writer import EventWriter, WriteBacklogFull
from aiflow_nb.ops import leases
from aiflow_nb.ops.recovery import fail_run
from aiflow_nb.serialization import loads
from aiflow_nb.store import redis_url
from aiflow_nb.store.connection import new_async_client
from aiflow_nb.store.embedded import EmbeddedRedis

T = TypeVar("T")
RUN = "fencedrun0001"


def _run(main: Callable[[aredis.Redis], Awaitable[T]], url: str | None = None) -> T:
    async def go() -> T:
        client = new_async_client(url or redis_url())  # a cluster's too (AIFLOW_TEST_REDIS_URL)
        try:
            return await main(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


async def _running_run(client: aredis.Redis, run_id: str = RUN, ttl_ms: int = 60_000) -> Fence:
    """A run record in state ``running`` whose lease an attempt has just taken."""
    await client.hset(keys.run(run_id), mapping={"run_id": run_id, "status": "running"})
    fence = Fence(run_id, new_token("worker-a"), ttl_ms)
    assert await leases.take(client, fence)
    return fence


async def _events(client: aredis.Redis, run_id: str = RUN) -> list[dict[str, Any]]:
    return [loads(f[FIELD]) for _, f in await client.xrange(keys.run_events(run_id))]


async def _logged(client: aredis.Redis) -> list[int]:
    return [e["data"]["i"] for e in await _events(client) if e["type"] == "log"]


def test_a_batch_is_refused_once_the_token_changed_and_the_attempt_stops() -> None:
    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        lost: list[str] = []
        fence.on_lost = lambda: lost.append("lost")
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        writer.emit("log", data={"i": 0})
        writer.journal("step#0", b"r0")
        await writer.flush()
        assert await _logged(client) == [0]
        assert await client.hget(keys.run(RUN), "fence") == f"{fence.token} 1".encode()

        await client.set(keys.run_lease(RUN), new_token("worker-b"))  # taken over
        writer.emit("log", data={"i": 1})
        writer.journal("step#1", b"r1")
        writer.raw("set", keys.cache("c", "k"), b"v", px=60_000)
        await writer.flush()
        assert lost == ["lost"] and writer.lost
        assert await _logged(client) == [0]  # nothing of the batch was applied
        assert await client.hkeys(keys.run_journal(RUN)) == [b"step#0"]
        assert await client.get(keys.cache("c", "k")) is None
        writer.emit("log", data={"i": 2})  # a writer whose token is gone writes nothing more
        await writer.flush()
        assert await _logged(client) == [0] and lost == ["lost"]

    _run(main)


def test_a_write_on_another_slot_lands_before_the_events_that_followed_it() -> None:
    """A cache entry goes outside the run's script (another slot), but never after the
    result that followed it: a caller acting on the result at once (a second run reading
    the cache) must find it. CI once saw the second run miss the cache on a cluster."""

    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        script = writer._script
        seen: list[tuple[list[int], bytes | None]] = []

        async def observed(key_list: list[str], args: list[Any]) -> Any:
            reply = await script(key_list, args)  # the state a reader can see right now
            seen.append((await _logged(client), await client.get(keys.cache("c", "k"))))
            return reply

        writer._script = observed  # type: ignore[method-assign]
        writer.emit("log", data={"i": 0})  # all three in one buffer: one flush
        writer.raw("set", keys.cache("c", "k"), b"v", px=60_000)
        writer.emit("log", data={"i": 1})
        await writer.flush()
        assert await _logged(client) == [0, 1]
        assert seen and all(cache == b"v" for logged, cache in seen if 1 in logged), seen

    _run(main)


def test_a_re_sent_batch_is_recognised_and_applied_once() -> None:
    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        batch = [
            ("xadd", (b'{"type": "log", "ts": 1, "run_id": "x", "data": {"i": 7}}',), {}),
            ("journal", ("step#7", b"r7"), {}),
            ("hincrby", (keys.side_effects(RUN), "sent", 1), {}),
        ]
        assert await writer._send(1, batch) == OK
        assert await writer._send(1, batch) == DUPLICATE  # its reply was lost: sent again
        assert await _logged(client) == [7]
        assert await client.hget(keys.side_effects(RUN), "sent") == b"1"
        assert await writer._send(2, batch) == OK  # the next batch applies
        assert await _logged(client) == [7, 7]

    _run(main)


def test_an_expired_lease_is_taken_back_unless_the_run_was_recovered_meanwhile() -> None:
    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        await client.delete(keys.run_lease(RUN))  # expired; nobody took it
        writer.emit("log", data={"i": 0})
        await writer.flush()
        assert not writer.lost and await _logged(client) == [0]
        assert await client.get(keys.run_lease(RUN)) == fence.token.encode()  # ours again
        assert await client.pttl(keys.run_lease(RUN)) > 50_000

        await client.delete(keys.run_lease(RUN))  # expired again, and the monitor re-queued
        await client.hdel(keys.run(RUN), "fence")  # the run (recovery clears the fence)
        state = await client.eval(
            leases.RENEW_RUN, 2, fence.lease, fence.record, fence.token, 60_000
        )
        assert state == LOST and await client.get(keys.run_lease(RUN)) is None
        writer.emit("log", data={"i": 1})
        await writer.flush()
        assert writer.lost and await _logged(client) == [0]
        assert await client.get(keys.run_lease(RUN)) is None

    _run(main)


def test_no_write_lands_on_an_ended_run_and_the_heartbeat_does_not_revive_its_lease() -> None:
    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        writer.record(status="completed", output="1")
        writer.release()
        writer.emit("run.completed", data={"output": 1})
        await writer.flush()
        assert await client.get(keys.run_lease(RUN)) is None
        # a heartbeat renewal that crossed the terminal write neither renews nor re-takes
        state = await client.eval(
            leases.RENEW_RUN, 2, fence.lease, fence.record, fence.token, 60_000
        )
        assert state == ENDED and await client.get(keys.run_lease(RUN)) is None
        # another attempt's late writes are refused: a terminal status is final
        other = Fence(RUN, new_token("worker-b"), 60_000)
        assert await leases.take(client, other)
        late = EventWriter(RUN, client, asyncio.get_running_loop(), other)
        late.record(status="failed")
        late.emit("run.failed", data={})
        await late.flush()
        assert late.lost
        assert await client.hget(keys.run(RUN), "status") == b"completed"
        assert [e["type"] for e in await _events(client)] == ["run.completed"]

    _run(main)


def test_fail_run_never_overwrites_a_terminal_status_nor_a_current_attempt() -> None:
    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        await client.hset(keys.run(RUN), mapping={"status": "completed", "output": "42"})
        assert not await fail_run(client, RUN, RuntimeError("late"), token=fence.token)
        assert not await fail_run(client, RUN, RuntimeError("late"))  # no token either
        assert await client.hmget(keys.run(RUN), "status", "output") == [b"completed", b"42"]
        assert await _events(client) == []

        other = "otherrun00001"
        stale = await _running_run(client, other)
        await client.set(keys.run_lease(other), new_token("worker-b"))  # taken over
        assert not await fail_run(client, other, RuntimeError("stale"), token=stale.token)
        assert await client.hget(keys.run(other), "status") == b"running"
        await client.set(keys.run_lease(other), stale.token)  # its own attempt: it fails
        assert await fail_run(client, other, RuntimeError("broke"), token=stale.token)
        assert await client.hget(keys.run(other), "status") == b"failed"
        assert await client.get(keys.run_lease(other)) is None
        assert [e["type"] for e in await _events(client, other)] == ["run.failed"]

    _run(main)


class PrivateRedis:
    """A redis-server of one test's own (AOF on, on its own socket), stopped and
    restarted by the test on the same data directory."""

    def __init__(self, directory: Path) -> None:
        self.server = EmbeddedRedis(directory)
        self.url = self.server.url
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = self.server.spawn()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # a clean stop: the AOF has every write
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    yield server
    server.stop()


def _restart_later(server: PrivateRedis, after: float) -> asyncio.Task[None]:
    async def restart() -> None:
        await asyncio.sleep(after)
        await asyncio.to_thread(server.start)

    return asyncio.create_task(restart())


def test_the_writer_keeps_its_batches_in_order_across_a_redis_restart(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "aiflow_nb.writer")

    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        for i in range(10):
            writer.emit("log", data={"i": i})
            writer.journal(f"step#{i}", b"r")
        await writer.flush()
        await asyncio.to_thread(private_redis.stop)
        restarted = _restart_later(private_redis, 1.0)
        for i in range(10, 60):  # written while Redis is down, as steps keep finishing
            writer.emit("log", data={"i": i})
            writer.journal(f"step#{i}", b"r")
            await asyncio.sleep(0.02)
        await asyncio.wait_for(writer.flush(), 30)
        await restarted
        assert await _logged(client) == list(range(60))  # every one, once, in order
        assert len(await client.hkeys(keys.run_journal(RUN))) == 60
        assert not writer.lost

    _run(main, private_redis.url)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Redis unreachable" in m for m in messages) == 1, messages
    assert sum("Redis reachable again" in m for m in messages) == 1, messages


def test_past_its_bound_the_backlog_stops_the_run_but_nothing_is_dropped(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "WRITER_MAX_UNSENT", 20)

    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        writer = EventWriter(RUN, client, asyncio.get_running_loop(), fence)
        overflows: list[int] = []
        writer.on_overflow = lambda: overflows.append(1)
        writer.emit("log", data={"i": 0})
        await writer.flush()
        await asyncio.to_thread(private_redis.stop)
        writer.emit("log", data={"i": 1})
        for _ in range(500):  # until the send failed past the client's own retries
            if writer.unreachable:
                break
            await asyncio.sleep(0.02)
        assert writer.unreachable
        for i in range(2, 40):
            writer.emit("log", data={"i": i})
        assert overflows == [1]
        assert isinstance(writer.backlog, WriteBacklogFull)
        assert "WRITER_MAX_UNSENT = 20" in str(writer.backlog)
        restarted = _restart_later(private_redis, 0.2)
        await asyncio.wait_for(writer.flush(), 30)
        await restarted
        assert await _logged(client) == list(range(40))

    _run(main, private_redis.url)


def test_a_run_whose_backlog_overflows_ends_failed_with_every_write_kept(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor's side of the bound: past it, the run is stopped and ends ``failed``
    (``WriteBacklogFull``) once Redis is back; all it wrote before is there, in order."""
    import aiflow_nb
    from aiflow_nb import progress, workflow
    from aiflow_nb.ops.executor import execute
    from aiflow_nb.ops.submit import submit

    monkeypatch.setenv("REDIS_URL", private_redis.url)
    aiflow_nb.configure()
    monkeypatch.setattr(defaults, "WRITER_MAX_UNSENT", 50)

    @workflow(name="fence_chatter")
    async def chatter(n: int) -> int:
        for i in range(n):
            progress(i, n)
            await asyncio.sleep(0.002)
        return n

    run_id = submit("fence_chatter", {"n": 100_000}, version="unserved")

    async def main(client: aredis.Redis) -> str:
        async def outage() -> None:
            while len(await _events(client, run_id)) < 20:  # the run is under way
                await asyncio.sleep(0.01)
            await asyncio.to_thread(private_redis.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(private_redis.start)

        task = asyncio.create_task(outage())
        t0 = time.monotonic()
        status = await asyncio.wait_for(execute(run_id, "worker-a", client), 30)
        assert time.monotonic() - t0 < 10  # stopped by the overflow, not by wait_for
        await task
        return status

    assert _run(main, private_redis.url) == "failed"
    events = _run(lambda c: _events(c, run_id), private_redis.url)
    done = [e["data"]["done"] for e in events if e["type"] == "progress"]
    assert done == list(range(len(done))) and len(done) > 50  # none dropped
    assert events[-1]["type"] == "run.failed"
    assert events[-1]["data"]["error"]["type"] == "WriteBacklogFull"
    rec = _run(lambda c: c.hgetall(keys.run(run_id)), private_redis.url)
    assert rec[b"status"] == b"failed" and b"WriteBacklogFull" in rec[b"error"]
    assert _run(lambda c: c.get(keys.run_lease(run_id)), private_redis.url) is None


def test_a_thread_writing_wakes_the_loop_once_per_burst_and_its_writes_stay_in_order() -> None:
    """A sync step runs on a worker thread: each of its writes used to wake the writer's
    loop once per batch (a write to the loop's self-pipe, which hands the GIL over at once:
    half a step's time). While the flusher runs it now takes the thread's writes itself, so
    the loop is woken about once per burst; a write the loop makes after the thread's comes
    after it in the stream."""

    async def main(client: aredis.Redis) -> None:
        fence = await _running_run(client)
        loop = asyncio.get_running_loop()
        writer = EventWriter(RUN, client, loop, fence)
        script, batches = writer._script, []

        async def slow(key_list: list[str], args: list[Any]) -> Any:
            batches.append(1)
            await asyncio.sleep(0.002)  # a batch in flight a while, as on a busy Redis
            return await script(key_list, args)

        writer._script = slow  # type: ignore[method-assign]
        wakes = 0
        threadsafe = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal wakes
            wakes += callback == writer._take_foreign
            return threadsafe(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

        def step(first: int) -> None:  # a step on a thread: its writes, then it returns
            for i in range(first, first + 200):
                writer.emit("log", data={"i": i})
                time.sleep(0.0002 if i % 20 == 0 else 0)

        for burst in range(5):
            await asyncio.to_thread(step, burst * 201)
            writer.emit("log", data={"i": burst * 201 + 200})  # the run, on the loop
        await writer.flush()
        assert await _logged(client) == list(range(5 * 201))
        assert len(batches) >= 10, batches  # many batches went while the thread wrote...
        assert wakes <= 10, (wakes, len(batches))  # ...the loop woken a few times only

    _run(main)
