"""A worker: consumes its version's queue through the consumer group and executes runs
on one asyncio loop (sync components in threads), heartbeating and holding a lease on
every run in hand. The in-process worker and ``aiflow worker`` are this same class.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from typing import Any

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..config import settings
from ..runtime.executor import RunControl, execute
from ..store import async_redis
from .presence import heartbeat_document
from .submit import resolve_version

__all__ = ["Worker"]

log = logging.getLogger("aiflow_nb.worker")


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
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.version = version
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.burst = burst
        self.state = "active"
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.controls: dict[str, RunControl] = {}
        self.completed = 0
        self.ready = threading.Event()
        self._stopping = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------
    async def serve(self) -> None:
        self.client: aredis.Redis = async_redis()
        if self.version is None:
            self.version = await asyncio.to_thread(resolve_version)
        self.queue = keys.queue(self.version)
        await self._ensure_group()
        await self._beat()
        self.ready.set()
        background = [asyncio.create_task(self._heartbeat_loop()),
                      asyncio.create_task(self._cancel_listener())]
        try:
            await self._consume()
            if self.tasks:
                await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._deregister()

    def stop(self) -> None:
        """Stop taking runs; ``serve()`` returns once the runs in hand end."""
        self.state = "draining"
        self._stopping.set()

    async def _ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.queue, keys.queue_group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- consuming ----------------------------------------------------------
    async def _consume(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self.tasks)
            if free <= 0:
                await asyncio.wait(list(self.tasks.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            reply = await self.client.xreadgroup(
                keys.queue_group, self.id, {self.queue: ">"}, count=free,
                block=defaults.QUEUE_BLOCK_MS,
            )
            entries = [e for _, batch in reply or [] for e in batch]
            for msg_id, fields in entries:
                self._spawn(msg_id.decode(), fields[b"run_id"].decode())
            if self.burst and not entries and not self.tasks:
                return

    def _spawn(self, msg_id: str, run_id: str) -> None:
        control = RunControl()
        task = asyncio.create_task(self._handle(msg_id, run_id, control))
        self.tasks[run_id] = task
        self.controls[run_id] = control
        task.add_done_callback(lambda _t: self._forget(run_id))

    def _forget(self, run_id: str) -> None:
        self.tasks.pop(run_id, None)
        self.controls.pop(run_id, None)

    async def _handle(self, msg_id: str, run_id: str, control: RunControl) -> None:
        lease = keys.run_lease(run_id)
        ttl_ms = int(settings().heartbeat_ttl * 1000)
        if not await self.client.set(lease, self.id, nx=True, px=ttl_ms):
            await self.client.xack(self.queue, keys.queue_group, msg_id)
            log.info("run %s is held by another worker; skipped", run_id)
            return
        try:
            await execute(run_id, self.id, self.client, control)
            self.completed += 1
        except asyncio.CancelledError:
            if control.reason != "handback":
                raise
            return  # leave the message pending and the lease to expire: it will be resumed
        except Exception:
            log.exception("run %s crashed the executor", run_id)
        await self.client.xack(self.queue, keys.queue_group, msg_id)
        await self.client.delete(lease)

    # --- heartbeats and cancels -----------------------------------------------
    async def _beat(self) -> None:
        s = settings()
        ttl_ms = int(s.heartbeat_ttl * 1000)
        doc = heartbeat_document(self.id, self.version or "", self.state, list(self.tasks),
                                 os.getpid(), socket.gethostname())
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(keys.worker(self.id), mapping=doc)
        pipe.pexpire(keys.worker(self.id), ttl_ms)
        pipe.zadd(keys.workers(), {self.id: doc["last_heartbeat"]})
        for run_id in self.tasks:
            pipe.pexpire(keys.run_lease(run_id), ttl_ms)
            pipe.hget(keys.run(run_id), "cancel_requested")
        replies = await pipe.execute()
        for run_id, flag in zip(list(self.tasks), replies[3::2], strict=False):
            if flag:
                self.cancel_run(run_id)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(settings().heartbeat_interval)
            try:
                await self._beat()
            except (redis.ConnectionError, OSError) as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _cancel_listener(self) -> None:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(keys.cancel_channel())
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self.cancel_run(message["data"].decode())
        finally:
            await pubsub.aclose()

    def cancel_run(self, run_id: str, reason: str = "cancel") -> bool:
        """Cancel a run in hand; True if this worker had it."""
        task = self.tasks.get(run_id)
        if task is None or task.done():
            return False
        self.controls[run_id].reason = reason
        task.cancel()
        return True

    async def _deregister(self) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(keys.worker(self.id))
            pipe.zrem(keys.workers(), self.id)
            await pipe.execute()
        except (redis.ConnectionError, OSError):
            pass
