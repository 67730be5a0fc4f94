"""``Follower``: replay then follow a run's events in a background thread.

Readers that render (a Panel session, a notebook) must not block on Redis, so the
follower drives ``events.follow.Follow`` on an event loop of its own and buffers what
it reads; the view calls ``drain()`` on its own schedule (which is also the throttle:
a burst of 10,000 events becomes a few redraws). After a ``run.failed`` it keeps
listening, since a failed run may be resumed; ``stop()`` ends it at once. It reads in
the namespace in force where it was made (``config.namespace()``), which its thread
would not inherit.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from .. import defaults
from ..config import namespace, use_namespace
from ..events.follow import Follow
from ..events.model import Event
from ..events.status import RunStatus
from ..store import async_redis

__all__ = ["Follower"]

_FINAL: frozenset[str] = frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED})
"""Statuses that end a follow (a failed run may be resumed: keep listening)."""


class Follower:
    """Buffers the events of ``run_id`` after ``after`` (an event id) as they arrive."""

    def __init__(
        self, run_id: str, after: str | None = None, block_ms: int = defaults.FOLLOW_BLOCK_MS
    ) -> None:
        self.run_id = run_id
        self.cursor = after
        self.block_ms = block_ms
        self.namespace = namespace()
        """The namespace read (the one in force when made)."""
        self.error: BaseException | None = None
        self._buffer: collections.deque[Event] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, daemon=True, name=f"aiflow-follow-{run_id}"
        )

    def start(self) -> Follower:
        self._thread.start()
        self._ready.wait(5)
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def drain(self, limit: int | None = None) -> list[Event]:
        """Events read since the last drain (at most ``limit``), in order."""
        n = len(self._buffer) if limit is None else min(limit, len(self._buffer))
        return [self._buffer.popleft() for _ in range(n)]

    def pending(self) -> int:
        return len(self._buffer)

    def stop(self, timeout: float = 5.0) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            with use_namespace(self.namespace):  # the task copies this context
                self._task = self._loop.create_task(self._follow())
            self._ready.set()
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the view via .error
            self.error = exc
        finally:
            self._ready.set()
            self._loop.run_until_complete(self._close())
            self._loop.close()

    async def _follow(self) -> None:
        spec = Follow(self.run_id, self.cursor, stop=_FINAL, block_ms=self.block_ms)
        async for batch in spec.abatches(async_redis()):
            self._buffer.extend(batch)
            if batch:
                self.cursor = batch[-1].id

    async def _close(self) -> None:
        client = async_redis()
        await client.aclose()
