"""The monitor: finds runs whose worker died and puts them back on the queue (or, past
``max_restarts``, ends them ``failed`` with reason ``crashed`` and sends a notification).

It runs inside every worker and as ``aiflow monitor``; a Redis lock
(``keys.monitor_lock``, renewed each sweep, expiring after ``heartbeat_ttl``) lets one act
at a time. Each sweep:

1. for each queue (``keys.queues`` of each version: one per workflow, one for registered
   code, ``ops/routing.py``), the consumers with no heartbeat: their pending entries are the runs
   they had in hand. Each is acknowledged and its run recovered (``ops/recovery.py``);
   a consumer with nothing pending is deleted from the group;
2. each partition's lease deadlines (``keys.lease_deadlines``: run id -> when its lease
   runs out, moved by every renewal): a run past its deadline whose status is
   ``running`` but whose lease is gone lost its worker some other way; it is recovered
   too. Every ``ORPHAN_SCAN_INTERVAL`` the partition's whole running set is read as well
   (a safety net), not every running run on every sweep;
3. each partition's expiry index (``keys.expiry``): finished runs whose retention ran
   out (their keys expired) leave the run indexes (``ops/retention.py``).

Every pass of ``run()`` also wakes the parked runs whose timed wait is due
(``keys.timers``, ``ops/answer.wake_due``): without the lock, since each wake is its own
transaction on one run, so a monitor that just started wakes them even while a dead
monitor's lock has yet to expire. The next pass comes sooner than ``interval`` when a
timer falls due before it.

Example::

    monitor = Monitor(max_restarts=3, notifier=Notifier(url))
    await monitor.sweep()        # one pass; [] when another monitor holds the lock
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..config import settings
from ..events.status import RunStatus
from ..store import async_redis
from ..store.outage import CONNECTION_ERRORS, Outage
from . import leases
from .answer import next_due, wake_due
from .notify import Notifier
from .recovery import Recovery, recover
from .retention import sweep_expired

__all__ = ["Monitor"]

log = logging.getLogger("aiflow_nb.monitor")

_TIMER_SLACK = 0.005
"""Seconds past a timer's due time the monitor wakes for it (so it is due when read)."""


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Monitor:
    """Recovers runs of dead workers; ``sweep()`` once, or ``run()`` until stopped."""

    def __init__(
        self,
        client: aredis.Redis | None = None,
        *,
        owner: str | None = None,
        interval: float = defaults.MONITOR_INTERVAL,
        max_restarts: int = defaults.MAX_RESTARTS,
        notifier: Notifier | None = None,
    ) -> None:
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self._client = client
        self.owner = owner or f"monitor-{secrets.token_hex(4)}"
        self.interval = interval
        self.max_restarts = max_restarts
        self.notifier = notifier if notifier is not None else Notifier(settings().notify_url)
        self.recovered: list[Recovery] = []
        self.expired = 0
        """Expired runs this monitor dropped from the run indexes."""
        self._scanned = -float("inf")
        """When (monotonic) the last full scan of the running runs was (``_orphans``)."""

    @property
    def client(self) -> aredis.Redis:
        if self._client is None:
            self._client = async_redis()
        return self._client

    # --- the lock -------------------------------------------------------------
    def _lock_ms(self) -> int:
        return int(max(settings().heartbeat_ttl, 3 * self.interval) * 1000)

    async def acquire(self) -> bool:
        """Take or renew the monitor lock; False when another monitor holds it."""
        got = await self.client.eval(
            leases.ACQUIRE, 1, keys.monitor_lock(), self.owner, self._lock_ms()
        )
        return bool(got)

    async def release(self) -> None:
        """Give the lock up (so another monitor takes over without waiting for its TTL)."""
        try:
            await self.client.eval(leases.RELEASE, 1, keys.monitor_lock(), self.owner)
        except (redis.RedisError, OSError):
            pass

    # --- one sweep --------------------------------------------------------------
    async def sweep(self) -> list[Recovery]:
        """One pass; the runs requeued or failed (``[]`` when another monitor acts)."""
        if not await self.acquire():
            return []
        done: list[Recovery] = []
        scan = time.monotonic() - self._scanned >= defaults.ORPHAN_SCAN_INTERVAL
        if scan:
            self._scanned = time.monotonic()
        for queue in await self._queues():
            done += await self._reclaim(queue)
        for part in range(keys.partitions()):
            done += await self._lapsed(part, {r.run_id for r in done})
            if scan:
                done += await self._orphans(part, {r.run_id for r in done})
            self.expired += await sweep_expired(self.client, part)
        acted = [r for r in done if r.outcome in ("requeued", "crashed")]
        for result in acted:
            self._report(result)
        self.recovered += acted
        return acted

    async def _queues(self) -> list[str]:
        """Every queue stream of every known version in every partition (``keys.queues``)."""
        versions = await self.client.zrange(keys.deployments(), 0, -1)
        pipe = self.client.pipeline(transaction=False)
        for version in versions:
            for part in range(keys.partitions()):
                pipe.smembers(keys.queues(_str(version), part))
        return sorted(_str(q) for members in await pipe.execute() for q in members)

    def _report(self, result: Recovery) -> None:
        if result.outcome == "crashed":
            log.error(
                "run %s failed: crashed (%s)", result.run_id, result.notification.get("message")
            )
            self.notifier.send(result.notification)
        else:
            log.warning(
                "run %s lost its worker: re-queued (restart %d)", result.run_id, result.restarts
            )

    async def _reclaim(self, queue: str) -> list[Recovery]:
        """Recover the pending entries of the queue's dead consumers."""
        try:
            consumers = await self.client.xinfo_consumers(queue, keys.queue_group)
        except redis.ResponseError:
            return []  # no such queue or group yet
        names = [_str(c["name"]) for c in consumers]
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.exists(keys.worker(name))
        alive = await pipe.execute()
        done: list[Recovery] = []
        for name, consumer, live in zip(names, consumers, alive, strict=True):
            if live:
                continue
            if int(consumer["pending"]) == 0:
                await self.client.xgroup_delconsumer(queue, keys.queue_group, name)
                continue
            done += await self._recover_entries(queue, name, int(consumer["pending"]))
        return done

    async def _recover_entries(self, queue: str, consumer: str, count: int) -> list[Recovery]:
        entries = await self.client.xpending_range(
            queue, keys.queue_group, min="-", max="+", count=count, consumername=consumer
        )
        ids = [_str(e["message_id"]) for e in entries]
        pipe = self.client.pipeline(transaction=False)
        for msg_id in ids:
            pipe.xrange(queue, msg_id, msg_id)
        found = await pipe.execute()
        done = []
        for msg_id, rows in zip(ids, found, strict=True):
            if not rows:  # the entry itself is gone: just drop it from the group
                await self.client.xack(queue, keys.queue_group, msg_id)
                continue
            run_id = _str(rows[0][1][b"run_id"])
            done.append(
                await recover(
                    self.client, run_id, max_restarts=self.max_restarts, entry=(queue, msg_id)
                )
            )
        return done

    async def _lapsed(self, partition: int, skip: set[str]) -> list[Recovery]:
        """The partition's runs whose lease deadline passed more than one ``interval``
        ago (``keys.lease_deadlines``; a dead worker's queue entries are reclaimed first,
        by ``_reclaim``) and that are still ``running`` with no lease: recovered (their
        entry dropped then). One whose lease was renewed has its deadline moved, one no
        longer running its entry dropped (``leases.CHECK_LAPSED``)."""
        index = keys.lease_deadlines(partition)
        now = time.time()
        raw = await self.client.zrangebyscore(
            index, "-inf", now - self.interval, start=0, num=defaults.LAPSED_BATCH
        )
        ids = [i for i in (_str(x) for x in raw) if i not in skip]
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.eval(
                leases.CHECK_LAPSED, 3, index, keys.run_lease(run_id), keys.run(run_id), run_id, now
            )
        lost = [run_id for run_id, got in zip(ids, await pipe.execute(), strict=True) if got]
        done = [
            await recover(self.client, run_id, max_restarts=self.max_restarts) for run_id in lost
        ]
        if lost:
            await self.client.zrem(index, *lost)
        return done

    async def _orphans(self, partition: int, skip: set[str]) -> list[Recovery]:
        """The partition's runs marked running whose lease is gone (and not handled by
        ``_reclaim``)."""
        ids = [_str(i) for i in await self.client.smembers(keys.running(partition))]
        ids = [i for i in ids if i not in skip]
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.exists(keys.run_lease(run_id))
            pipe.hget(keys.run(run_id), "status")
        replies = await pipe.execute()
        lost = [
            run_id
            for run_id, held, status in zip(ids, replies[0::2], replies[1::2], strict=True)
            if not held and status == RunStatus.RUNNING.encode()
        ]
        return [
            await recover(self.client, run_id, max_restarts=self.max_restarts) for run_id in lost
        ]

    async def wake(self) -> list[str]:
        """Wake the parked runs whose timed wait is due (``sleep``, a ``timeout``)."""
        woken = await wake_due(self.client)
        for run_id in woken:
            log.info("run %s: timed wait due, re-queued", run_id)
        return woken

    async def _pause(self) -> float:
        """Seconds until the next pass: ``interval``, or less when a timer falls due sooner
        (so a sleep wakes on time, not up to an interval late)."""
        due = await next_due(self.client)
        if due is None:
            return self.interval
        return min(self.interval, max(0.0, due - time.time()) + _TIMER_SLACK)

    # --- the loop -----------------------------------------------------------------
    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Sweep every ``interval`` seconds until ``stopping`` is set; then release the lock
        and give pending notifications a moment."""
        stopping = stopping or asyncio.Event()
        outage = Outage("monitor")  # one log line when Redis goes away, one when it is back
        try:
            while not stopping.is_set():
                pause = self.interval
                try:
                    await self.sweep()
                    await self.wake()
                    pause = await self._pause()
                    outage.ok()
                except CONNECTION_ERRORS as exc:
                    outage.failed(exc)
                except redis.RedisError as exc:
                    log.warning("monitor sweep failed: %s", exc)
                await _sleep_unless(stopping, pause)
        finally:
            await self.release()
            await self.notifier.aclose()


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds`` or until ``event`` is set (``asyncio.wait`` never swallows a
    cancellation, unlike ``wait_for`` on Python 3.11 when its timeout fires at once)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
