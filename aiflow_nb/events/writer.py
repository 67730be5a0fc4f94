"""Group-committed writes of a run's events, journal and record.

Every write is appended to a buffer; one flusher task sends the whole buffer as
one atomic pipeline (MULTI/EXEC), then sends whatever arrived meanwhile. A lone event therefore
costs one round trip (it reaches readers within milliseconds) and a burst is
batched. ``emit`` is safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis.asyncio as aredis

from .. import keys
from .model import FIELD, make_payload

__all__ = ["EventWriter", "Op"]

Op = tuple[str, tuple[Any, ...], dict[str, Any]]


class EventWriter:
    """Writes one run's events (and journal and record fields) on one event loop."""

    def __init__(self, run_id: str, client: aredis.Redis, loop: asyncio.AbstractEventLoop) -> None:
        self.run_id = run_id
        self._client = client
        self._loop = loop
        self._stream = keys.run_events(run_id)
        self._pending: list[Op] = []
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._foreign: list[Op] = []
        self._wakeup_pending = False

    def emit(self, type: str, **fields: Any) -> None:
        """Append an event (see ``make_payload`` for the fields)."""
        self._push(("xadd", (make_payload(type, self.run_id, **fields),), {}))

    def journal(self, step_key: str, document: bytes) -> None:
        """Record a finished step's result."""
        self._push(("journal", (step_key, document), {}))

    def record(self, **fields: str | bytes | int | float) -> None:
        """Update fields of the run record."""
        self._push(("hset", (keys.run(self.run_id),), {"mapping": fields}))

    def raw(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Any other pipeline command, in order with the events (e.g. a cache SET)."""
        self._push((method, args, kwargs))

    def _push(self, op: Op) -> None:
        if _in_loop(self._loop):
            self._append(op)
            return
        with self._lock:  # from another thread: one loop wake-up per burst, not per op
            self._foreign.append(op)
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        self._loop.call_soon_threadsafe(self._take_foreign)

    def _take_foreign(self) -> None:
        with self._lock:
            ops, self._foreign = self._foreign, []
            self._wakeup_pending = False
        if ops:
            self._pending.extend(ops)
            self._ensure_flusher()

    def _append(self, op: Op) -> None:
        self._pending.append(op)
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._flusher is None:
            self._idle.clear()
            self._flusher = self._loop.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []  # whole: a batch is atomic
                await self._send(batch)
        except BaseException as exc:  # surfaced by flush(); never lost silently
            self.error = exc
            self._pending.clear()
        finally:
            self._flusher = None
            self._idle.set()

    async def _send(self, batch: list[Op]) -> None:
        # MULTI/EXEC: a reader never sees a run's status ahead of the events written with it
        pipe = self._client.pipeline(transaction=True)
        journal = {args[0]: args[1] for method, args, _ in batch if method == "journal"}
        if journal:  # first: a step is journaled no later than its completion event
            pipe.hset(keys.run_journal(self.run_id), mapping=journal)
        events: list[bytes] = []
        for method, args, kwargs in batch:
            if method == "journal":
                continue
            if method == "xadd":
                events.append(args[0])
                continue
            self._add_events(pipe, events)
            getattr(pipe, method)(*args, **kwargs)
        self._add_events(pipe, events)
        await pipe.execute()

    def _add_events(self, pipe: Any, events: list[bytes]) -> None:
        """Consecutive events become one XADD (one) or one script call (many), in order."""
        if len(events) == 1:
            pipe.xadd(self._stream, {FIELD: events[0]})
        elif events:
            pipe.eval(_XADD_MANY, 1, self._stream, *events)
        events.clear()

    async def flush(self) -> None:
        """Wait until everything appended so far is written; re-raise a write error."""
        self._take_foreign()
        await self._idle.wait()
        if self.error is not None:
            error, self.error = self.error, None
            raise error


_XADD_MANY = """-- aiflow: append many events in one command (Redis caches the compiled script)
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
end
return #ARGV
"""


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
