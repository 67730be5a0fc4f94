"""A worker: consumes the queues of what it can execute (its version's queue of each
workflow its process defines, and of registered code when it accepts that; see
``ops/routing.py``) through the consumer group and executes runs
on one asyncio loop (sync components in threads), heartbeating and holding a lease on
every run in hand. The in-process worker and ``aiflow worker`` are this same class.

Stopping: ``stop()`` stops taking runs and lets runs in hand finish; with a
``drain_timeout`` the runs still in hand after it are handed back (re-queued, resumed
by another worker from their journal). ``abort()`` stops at once and leaves runs in hand
to the monitor (their leases expire). Each run in hand is one execution attempt with a
fencing token (its lease's value, ``events/fence.py``) that fences all its writes: an
attempt found to have lost it (it stalled past ``heartbeat_ttl`` and the run was
recovered elsewhere) writes nothing more and is dropped at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from hashlib import sha1
from typing import TYPE_CHECKING, Any, cast

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..authoring import registry
from ..cancelling import cancel_and_wait
from ..config import settings
from ..errors import RedisUnavailable
from ..events.fence import OK, Fence, new_token
from ..store import async_redis, channels
from ..store.outage import CONNECTION_ERRORS, Outage
from . import leases
from .executor import RunControl, execute, stop
from .monitor import Monitor
from .presence import advertise, heartbeat_document, withdraw
from .recovery import fail_run, hand_back
from .routing import ALL, CodeRuns, served_queues
from .submit import resolve_version

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

    from ..store.replies import StreamsReply

__all__ = ["Worker"]


def _shares(queues: list[list[str]], free: int, start: int) -> list[tuple[list[str], int]]:
    """``free`` entries shared out over the partitions' queue lists, from the one at
    ``start`` on (the first ``free % n`` of them one more): each with its count, those
    with none left out."""
    n = len(queues)
    order = [queues[(start + i) % n] for i in range(n)]
    return [(group, free // n + (i < free % n)) for i, group in enumerate(order) if i < free]


def _split_reply(reply: StreamsReply, count: int) -> tuple[StreamsReply, StreamsReply]:
    """The first ``count`` entries of a streams reply, and the rest."""
    keep: list[Any] = []
    rest: list[Any] = []
    for queue, entries in reply:
        room = max(0, count - sum(len(e) for _, e in keep))
        if entries[:room]:
            keep.append((queue, entries[:room]))
        if entries[room:]:
            rest.append((queue, entries[room:]))
    return keep, rest


log = logging.getLogger("aiflow_nb.worker")


_UNREACHABLE: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, RedisUnavailable)
"""Redis cannot be reached (a sync client's first PING raises ``RedisUnavailable``)."""


class Worker:
    """Executes queued runs. ``await serve()`` until ``stop()`` (or, with ``burst``, until
    the queue is empty)."""

    def __init__(
        self,
        *,
        concurrency: int = defaults.WORKER_CONCURRENCY,
        version: str | None = None,
        worker_id: str | None = None,
        burst: bool = False,
        monitor: bool = True,
        max_restarts: int = defaults.MAX_RESTARTS,
        code: CodeRuns = ALL,
        kind: str = "worker",
        workflows: Callable[[], Iterable[str]] = registry.names,
        wait_for_redis: bool = False,
        on_ready: Callable[[Worker], None] | None = None,
    ) -> None:
        """``code``: which runs of registered notebook code to take (``ops/routing.py``:
        all, resumed, none); ``workflows``: the names this
        process can execute (read again on every poll, so a kernel's new definitions are
        served at once); ``kind`` is advertised (``worker``, ``kernel``, ``daemon``);
        ``wait_for_redis``: when Redis is unreachable at start, back off and wait for it
        (a worker process started beside its Redis) instead of raising
        ``RedisUnavailable``; ``on_ready`` is called once it has started (its version
        resolved), e.g. to say which version it serves."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.version = version
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.burst = burst
        self.code = code
        self.kind = kind
        self.workflows = workflows
        self.wait_for_redis = wait_for_redis
        self.on_ready = on_ready
        self._claimed: list[int] | None = None
        """The partitions this worker's share is (``_claim``); None: not known yet."""
        self._peers: str | None = None
        """The peers set this worker heartbeats into (``keys.peers``)."""
        self._turn = 0
        """The partition whose queues the next blocking read waits on (``_read``)."""
        self.queues: list[str] = []
        """The queue streams this worker reads (``ops/routing.py``), grown as it learns
        new workflows."""
        self.state = "active"
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.controls: dict[str, RunControl] = {}
        self.fences: dict[str, Fence] = {}
        """The lease (fencing token) of each run in hand, once taken."""
        self.completed = 0
        self.ready = threading.Event()
        self.monitor = Monitor(owner=self.id, max_restarts=max_restarts) if monitor else None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._drain_timer: asyncio.TimerHandle | None = None

    # --- lifecycle ----------------------------------------------------------
    async def serve(self) -> None:
        # Objects alive now (modules, app code) never become garbage: keep them out of the
        # cyclic GC, whose full passes over them otherwise stall a fan-out by 50-80 ms.
        gc.freeze()
        self.loop = asyncio.get_running_loop()
        if not await self._start():
            return  # stopped while waiting for Redis: nothing was registered
        advertise(self.id, self.serves)
        self.ready.set()
        background = [
            asyncio.create_task(self._heartbeat_loop()),
            asyncio.create_task(self._cancel_listener()),
        ]
        if self.monitor is not None:
            self.monitor._client = self.client
            background.append(asyncio.create_task(self.monitor.run(self._stopping)))
        try:
            await self._consume()
            while self.tasks:
                await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        finally:
            self._stopping.set()  # the monitor's loop ends even if a cancel were lost
            if self._drain_timer is not None:
                self._drain_timer.cancel()
            await cancel_and_wait(*background)  # a plain cancel can be swallowed mid-send
            if self.monitor is not None:
                await self.monitor.release()
            await self._deregister()

    async def _start(self) -> bool:
        """Connect, resolve the version, make the consumer groups and heartbeat once; with
        ``wait_for_redis``, again after a backoff while Redis is unreachable. False when the
        worker was stopped before that succeeded."""
        outage = Outage(f"worker {self.id} start")
        while True:
            try:
                self.client: aredis.Redis = async_redis()
                if self.version is None:
                    self.version = await asyncio.to_thread(resolve_version)
                # known to deployments() and the monitor even if never deployed
                await self.client.zadd(keys.deployments(), {self.version: time.time()}, nx=True)
                await self._update_queues()
                await self._beat()
            except _UNREACHABLE as exc:
                if not self.wait_for_redis:
                    raise
                try:  # a signal stops the wait
                    await asyncio.wait_for(self._stopping.wait(), outage.failed(exc))
                except TimeoutError:
                    continue
                return False
            outage.ok()
            if self.on_ready is not None:
                self.on_ready(self)
            return True

    def stop(self, drain_timeout: float | None = None) -> None:
        """Stop taking runs; ``serve()`` returns once the runs in hand end. With
        ``drain_timeout`` (seconds), runs still in hand then are handed back. Call it on
        the worker's loop."""
        if self.state == "active":
            self.state = "draining"
            log.info("worker %s draining: %d run(s) in hand", self.id, len(self.tasks))
            if self.loop is not None:
                self.loop.create_task(self._beat_quietly())
        self._stopping.set()
        if drain_timeout is not None and self._drain_timer is None and self.loop is not None:
            self._drain_timer = self.loop.call_later(drain_timeout, self.hand_back_all)

    def hand_back_all(self) -> int:
        """Hand every run in hand back to the queue (another worker resumes it)."""
        handed = [run_id for run_id in list(self.tasks) if self.cancel_run(run_id, "handback")]
        if handed:
            log.warning(
                "worker %s handing back %d run(s): %s", self.id, len(handed), ", ".join(handed)
            )
        return len(handed)

    def abort(self) -> None:
        """Stop at once: runs in hand are left to the monitor (their leases expire)."""
        self.stop()
        for run_id in list(self.tasks):
            self.cancel_run(run_id, "abort")

    def serves(self) -> list[str]:
        """The workflow names this worker executes now."""
        return sorted(set(self.workflows()))

    async def _update_queues(self) -> list[list[str]]:
        """The queues to read now, one list per partition (one slot each); a consumer
        group is made on each new one (from its start: runs queued before anyone served
        them are taken)."""
        wanted = [
            served_queues(self.version or "", self.serves(), self.code, partition)
            for partition in self.partitions()
        ]
        for partition, group in zip(self.partitions(), wanted, strict=True):
            for queue in group:
                if queue not in self.queues:
                    await self._ensure_group(queue, partition)
                    self.queues.append(queue)
        return [group for group in wanted if group]

    def partitions(self) -> list[int]:
        """The partitions whose queues this worker reads: all of them until its first
        heartbeat read its peers, then its share (``_claim``); with one partition, 0."""
        count = keys.partitions()
        if count == 1 or self._claimed is None:
            return list(range(count))
        return [p for p in self._claimed if p < count]

    async def _ensure_group(self, queue: str, partition: int) -> None:
        try:
            await self.client.xgroup_create(queue, keys.queue_group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self.client.sadd(keys.queues(self.version or "", partition), queue)

    # --- consuming ----------------------------------------------------------
    async def _consume(self) -> None:
        outage = Outage(f"worker {self.id} consume")
        checked = -math.inf  # this consumer's own pending entries: at start, then now and then
        while not self._stopping.is_set():
            free = self.concurrency - len(self.tasks)
            if free <= 0:
                await asyncio.wait(list(self.tasks.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            try:  # Redis unreachable or restarting: back off, read again (runs in hand go on)
                queues = await self._update_queues()
                if not queues:  # nothing to serve yet (a kernel before its first workflow)
                    await asyncio.sleep(defaults.QUEUE_BLOCK_MS / 1000)
                    continue
                due = time.monotonic() - checked >= defaults.UNANSWERED_CHECK_INTERVAL
                if outage.down or due:  # before reading new entries, so none is taken twice
                    read_at = time.monotonic()
                    for queue, (msg_id, fields) in await self._unanswered(queues):
                        self._spawn(queue, msg_id.decode(), fields[b"run_id"].decode(), read_at)
                    checked = time.monotonic()
                read_at = time.monotonic()
                reply = await self._read(queues, free)
            except CONNECTION_ERRORS as exc:
                await asyncio.sleep(outage.failed(exc))
                continue
            except redis.ResponseError as exc:  # a Redis restarted without a queue's group
                if "NOGROUP" not in str(exc):
                    raise
                self.queues.clear()  # _update_queues makes the groups again
                continue
            outage.ok()
            entries: list[Any] = [(q.decode(), e) for q, batch in reply or [] for e in batch]
            if entries and self._stopping.is_set():
                await self._give_back(entries)
                return
            for queue, (msg_id, fields) in entries:
                self._spawn(queue, msg_id.decode(), fields[b"run_id"].decode(), read_at)
            if self.burst and not entries and not self.tasks:
                return

    async def _read(self, queues: list[list[str]], free: int) -> StreamsReply:
        """New entries of the queues (one list per partition), at most ``free``: one
        blocking XREADGROUP when they are one partition's; else one non-blocking read
        per partition (pipelined, their counts summing to ``free``, so nothing read has
        to go back: the partitions a turn leaves out, when ``free`` is smaller than their
        number, come first the next turn), then, if none had any, a short blocking read
        of the next partition in turn (never one XREADGROUP over several slots)."""
        if len(queues) == 1:
            return await self._xread(queues[0], free, defaults.QUEUE_BLOCK_MS)
        pipe = self.client.pipeline(transaction=False)
        for group, count in _shares(queues, free, self._turn):
            pipe.xreadgroup(keys.queue_group, self.id, dict.fromkeys(group, ">"), count=count)
        self._turn = (self._turn + min(free, len(queues))) % len(queues)
        found = [batch for reply in await pipe.execute() for batch in reply or []]
        taken = sum(len(entries) for _, entries in found)
        if taken:
            if taken > free:  # more than it can hold: the rest back on their queues
                keep, extra = _split_reply(found, free)
                await self._give_back([(q.decode(), e) for q, batch in extra for e in batch])
                return keep
            return found
        self._turn = (self._turn + 1) % len(queues)
        block = max(defaults.PARTITION_BLOCK_MIN_MS, defaults.QUEUE_BLOCK_MS // len(queues))
        return await self._xread(queues[self._turn], free, block)

    async def _xread(self, queues: list[str], count: int, block: int) -> StreamsReply:
        reply = cast(
            "StreamsReply | None",
            await self.client.xreadgroup(
                keys.queue_group, self.id, dict.fromkeys(queues, ">"), count=count, block=block
            ),
        )
        return reply or []

    async def _unanswered(self, queues: list[list[str]]) -> list[Any]:
        """This consumer's pending entries of runs not in hand: a read whose reply an
        outage cut off delivered them (the monitor reclaims only dead consumers' entries).
        Checked after an outage the loop saw, and every ``UNANSWERED_CHECK_INTERVAL`` s: the
        clients' own retry can hide a short outage from the loop (the read is re-sent)."""
        pipe = self.client.pipeline(transaction=False)
        for group in queues:  # one read per partition (slot)
            pipe.xreadgroup(keys.queue_group, self.id, dict.fromkeys(group, "0"))
        replies = cast("list[StreamsReply | None]", await pipe.execute())
        return [
            (q.decode(), (msg_id, fields))
            for reply in replies
            for q, batch in reply or []
            for msg_id, fields in batch
            if fields and fields[b"run_id"].decode() not in self.tasks  # deleted: no fields
        ]

    async def _give_back(self, entries: list[Any]) -> None:
        """Requests read just as the worker began to drain go back on the queue untouched."""
        for queue, (msg_id, fields) in entries:  # one transaction per queue
            pipe = self.client.pipeline(transaction=True)
            pipe.xadd(queue, fields)
            pipe.xack(queue, keys.queue_group, msg_id)
            pipe.xdel(queue, msg_id)
            await pipe.execute()

    def _spawn(self, queue: str, msg_id: str, run_id: str, read_at: float) -> None:
        """Handle one queue entry, read by a command sent at ``read_at`` (monotonic)."""
        control = RunControl()
        task = asyncio.create_task(self._handle(msg_id, run_id, control, queue, read_at))
        self.tasks[run_id] = task
        self.controls[run_id] = control
        task.add_done_callback(lambda done: self._forget(run_id, done))

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        """Drop a finished task's bookkeeping, unless a newer attempt of the same run is in
        hand already (a parked run answered at once is queued again, and this worker may
        take it before the attempt that parked it has acked its entry)."""
        if self.tasks.get(run_id) is not task:
            return
        self.tasks.pop(run_id, None)
        self.controls.pop(run_id, None)
        self.fences.pop(run_id, None)

    async def _handle(
        self, msg_id: str, run_id: str, control: RunControl, queue: str, read_at: float
    ) -> None:
        if await self._reclaimed(queue, msg_id, read_at):
            log.warning(
                "run %s: its queue entry was reclaimed while this worker stalled (the "
                "monitor found it dead and re-queued the run); skipped",
                run_id,
            )
            return
        fence = Fence(run_id, new_token(self.id), int(settings().heartbeat_ttl * 1000))
        taken = await leases.take_and_read(self.client, fence)
        if taken is None:
            await self._drop_entry(queue, msg_id)  # a duplicate request: its run is in hand
            log.info("run %s is held by another worker; skipped", run_id)
            return
        self.fences[run_id] = fence
        try:
            await execute(run_id, self.id, self.client, control, fence, taken, (queue, msg_id))
            self.completed += 1
        except asyncio.CancelledError:
            control.acknowledged = True
            await self._after_cancel(queue, msg_id, run_id, control.reason)
            return
        except Exception as exc:
            log.exception("run %s crashed the executor", run_id)
            await fail_run(self.client, run_id, exc, token=fence.token)
        if control.settled:  # the run's last write acknowledged its entry, released its lease
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(queue, keys.queue_group, msg_id)
        pipe.xdel(queue, msg_id)
        # only if still this attempt's: the executor already released it with the run's
        # terminal write, and a resume() since then may have given it to another worker
        pipe.eval(leases.RELEASE, 1, fence.lease, fence.token)
        await pipe.execute()

    async def _reclaimed(self, queue: str, msg_id: str, read_at: float) -> bool:
        """True when the entry is gone from the queue although this worker has not answered
        it: the monitor reclaimed it (and re-queued its run) while this worker was stalled
        (SIGSTOP, starved) with the entry read or in its socket. Taking the run with it
        would go behind the monitor's back. Checked (one round trip) only when the entry
        is older than a read should take: ``QUEUE_BLOCK_MS`` + a heartbeat interval."""
        stale = defaults.QUEUE_BLOCK_MS / 1000 + settings().heartbeat_interval
        if time.monotonic() - read_at <= stale:
            return False
        return not await self.client.xrange(queue, msg_id, msg_id)

    async def _drop_entry(self, queue: str, msg_id: str, fence: Fence | None = None) -> None:
        """Acknowledge and delete a queue entry (a queue holds only unfinished requests);
        with ``fence``, release its lease too while it is still that attempt's."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(queue, keys.queue_group, msg_id)
        pipe.xdel(queue, msg_id)
        if fence is not None:
            pipe.eval(leases.RELEASE, 1, fence.lease, fence.token)
        await pipe.execute()

    async def _after_cancel(self, queue: str, msg_id: str, run_id: str, reason: str) -> None:
        if reason == "handback":
            token, route = self.fences[run_id].token, self.controls[run_id].route
            outcome = await hand_back(self.client, run_id, token, (queue, msg_id), route)
            log.info("run %s handed back (%s)", run_id, outcome)
        elif reason == "lost":  # taken over or recovered: the run is someone else's now
            log.warning(
                "run %s: lease lost (this worker stalled past the heartbeat TTL or could "
                "not reach Redis, and the run was recovered elsewhere); dropped here",
                run_id,
            )
            # and our lease, if it is still ours (the run was ended by someone else)
            await self._drop_entry(queue, msg_id, self.fences.get(run_id))
        elif reason != "abort":  # abort: entry stays pending, the lease expires, monitor acts
            raise asyncio.CancelledError

    # --- heartbeats and cancels -----------------------------------------------
    async def _beat(self) -> None:
        s = settings()
        ttl_ms = int(s.heartbeat_ttl * 1000)
        doc = heartbeat_document(
            self.id,
            self.version or "",
            self.state,
            list(self.tasks),
            os.getpid(),
            socket.gethostname(),
            serves=self.serves(),
            code=self.code,
            kind=self.kind,
        )
        pipe = self.client.pipeline(transaction=False)
        shared = self._queue_peers(pipe, float(doc["last_heartbeat"]), s.heartbeat_ttl)
        pipe.hset(keys.worker(self.id), mapping=cast("dict[FieldT, EncodableT]", doc))
        pipe.pexpire(keys.worker(self.id), ttl_ms)
        pipe.zadd(keys.workers(), {self.id: doc["last_heartbeat"]})
        # runs whose terminal write is queued are left alone: it releases their lease
        in_hand = [f for f in self.fences.values() if not (f.final or f.lost)]
        for fence in in_hand:
            index, run_id, deadline = leases.deadline_args(fence)
            pipe.eval(
                leases.RENEW_RUN,
                3,
                fence.lease,
                fence.record,
                index,
                fence.token,
                ttl_ms,
                run_id,
                deadline,
            )
            pipe.hget(fence.record, "cancel_requested")
        sent = time.monotonic()
        replies = await pipe.execute()
        if shared:
            self._claim(replies[shared - 1])
        replies = replies[shared:]
        for fence, state, flag in zip(in_hand, replies[3::2], replies[4::2], strict=True):
            if fence.final or fence.lost:  # ended (or was dropped) while the beat was out
                continue
            if state == OK:
                fence.renewed(sent)
                if flag:
                    self.cancel_run(fence.run_id)
            else:  # taken over, recovered, or ended by someone else: stop at once
                fence.lose()

    def _queue_peers(self, pipe: Any, now: float, ttl: float) -> int:
        """With several partitions: queue on ``pipe`` this worker's presence among its
        peers (the live, active workers of its version serving the same workflows and
        code runs, ``keys.peers``) and the read of them; how many commands (0: one
        partition, every worker serves it)."""
        if keys.partitions() == 1:
            return 0
        serves = ",".join(self.serves())
        group = sha1(f"{self.version}\0{self.code}\0{serves}".encode()).hexdigest()[:16]
        peers = keys.peers(group)
        queued = 0
        if self._peers is not None and self._peers != peers:  # it serves something else now
            pipe.zrem(self._peers, self.id)
            queued += 1
        self._peers = peers
        pipe.zremrangebyscore(peers, "-inf", now - ttl)  # dead workers' entries
        if self.state == "active":
            pipe.zadd(peers, {self.id: now})
        else:  # draining: its partitions go to the others at their next beat
            pipe.zrem(peers, self.id)
        pipe.zrange(peers, 0, -1)
        return queued + 3

    def _claim(self, members: list[bytes]) -> None:
        """Take this worker's share of the partitions among its live peers: partition
        ``p`` is the ``p % n``-th peer's (by id), so each is read by one peer once all
        have beaten, and a peer's partitions pass to the others when it stops beating
        (its entry expires after ``heartbeat_ttl``) or drains."""
        ids = sorted({m.decode() for m in members} | {self.id})
        rank, count = ids.index(self.id), keys.partitions()
        claimed = [p for p in range(count) if p % len(ids) == rank]
        if claimed != self._claimed:
            log.info(
                "worker %s serves partitions %s (of %d, %d peer(s))",
                self.id,
                claimed,
                count,
                len(ids),
            )
            self._claimed = claimed

    async def _beat_quietly(self) -> None:
        try:
            await self._beat()
        except (redis.RedisError, OSError) as exc:
            log.warning("heartbeat failed: %s", exc)

    async def _heartbeat_loop(self) -> None:
        outage = Outage(f"worker {self.id} heartbeat")
        while True:
            await asyncio.sleep(settings().heartbeat_interval)
            try:
                await self._beat()
            except CONNECTION_ERRORS as exc:  # the next beat tries again
                outage.failed(exc)
                continue
            outage.ok()

    async def _cancel_listener(self) -> None:
        """Cancels published on the channel; subscribes again after an outage (a cancel
        published meanwhile still arrives: the heartbeat reads ``cancel_requested``)."""
        outage = Outage(f"worker {self.id} cancel listener")
        while True:
            try:
                messages = channels.listen(self.client, keys.cancel_channel(), outage.ok)
                async for run_id in messages:
                    self.cancel_run(run_id.decode())
            except CONNECTION_ERRORS as exc:
                await asyncio.sleep(outage.failed(exc))

    def cancel_run(self, run_id: str, reason: str = "cancel") -> bool:
        """Cancel a run in hand; True if this worker had it. ``reason``: see ``RunControl``
        (``lost`` also marks its fencing token lost, so nothing more of it is written)."""
        task = self.tasks.get(run_id)
        if task is None or task.done():
            return False
        fence = self.fences.get(run_id)
        if fence is not None and (fence.lost or fence.final) and reason != "abort":
            return False  # already stopping as lost, or its terminal write is out
        if reason == "lost" and fence is not None:
            self.controls[run_id].reason = reason
            fence.lose()  # the executor stops the task
        else:
            stop(task, self.controls[run_id], reason)
        return True

    async def _deregister(self) -> None:
        withdraw(self.id)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(keys.worker(self.id))
            pipe.zrem(keys.workers(), self.id)
            if self._peers is not None:
                pipe.zrem(self._peers, self.id)
            await pipe.execute()
        except CONNECTION_ERRORS:  # also a cluster that is down
            pass
