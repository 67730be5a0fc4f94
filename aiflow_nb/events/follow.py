"""The one replay-then-follow of a run's stream: a sans-IO core and two drivers.

``Follow.flow()`` is a generator that yields either a ``Command`` (a Redis call to make;
``send()`` it the reply) or a batch of events (``list[Event]``; send ``None``). It never
touches a connection, so a test drives it by hand; ``batches`` (``redis.Redis``) and
``abatches`` (``redis.asyncio.Redis``) drive it for real. The rules, in order:

1. the record's ``status`` (none: ``RunNotFound``); without ``replay``, with the stream's
   current last id, read at once (one script), unless the caller knows that id with the run
   not ended (``tail``: a run it just submitted), which is then read from, nothing first;
2. ``replay``: XRANGE pages after ``after`` (one batch each); else position at that last
   id, replaying nothing;
3. stop when not following, or (replaying) when the last event read is a ``run.*`` end in
   ``stop``; without replay, when the status read in 1 is in ``stop`` (the tail event decides
   nothing: it may be an earlier attempt's end of a run resumed since); else yield ``[]``
   once (positioned at the tail);
4. whenever caught up (positioned after a replay, or an XREAD idle for ``block_ms``) and
   ``stop`` is set, re-read the status: ended (in ``stop``) -> read the rest of the stream
   once, stop (the events written with the final status are there: one atomic write; a
   log line may follow ``run.completed``);
5. XREAD BLOCK from the last id; a batch of what came (``[]`` when idle), cut after a
   ``run.*`` end in ``stop``, which ends the follow. Past ``timeout``: ``RunTimeout`` (a
   ``TimeoutError``).

The drivers live through Redis outages: a command that fails with a connection error is
sent again, the same, after a jittered backoff (``store.outage``; one log line when the
outage starts, one when it ends). The core keeps the cursor, so the reader goes on where
it stopped: no gap, no duplicate. An outage longer than ``patience`` (default: the
``timeout``) raises ``RedisUnavailable`` instead (the API's streams end and say so).

Example::

    for batch in Follow(run_id, replay=False, timeout=5).batches(client):
        ...  # [] while idle; ends when the run does
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..errors import RunNotFound, RunTimeout
from ..store import async_redis, sync_redis
from ..store.outage import Outage
from ..store.replies import StreamEntries, StreamsReply
from ..store.scripts import run_script, run_script_sync
from .model import FIELD, Event
from .status import TERMINAL

__all__ = ["CALL", "STATUS_AND_TAIL", "WAITER_PAGE", "Command", "Flow", "Follow"]


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis call for a driver to make: ``getattr(client, method)(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class _Calls:
    """``CALL.xrange(s, min="-")`` is ``Command("xrange", (s,), {"min": "-"})``: a command
    written like the redis-py call it stands for."""

    def __getattr__(self, method: str) -> Callable[..., Command]:
        return lambda *args, **kwargs: Command(method, args, kwargs)


CALL = _Calls()

Flow = Generator[Command | list[Event], Any, None]
"""What ``Follow.flow()`` returns: yields commands (send the reply) and event batches."""


_Position = tuple[str, Event | None]
"""Where a reader stands: the last id read (``0-0``: none) and the last event, if any."""


def _events(entries: StreamEntries, run_id: str, ends_only: bool = False) -> list[Event]:
    """The events of ``entries``; ``ends_only``: only those that may end a run (``run.*``)
    and the last (the reader's cursor), the rest not even parsed."""
    if not ends_only:
        return [Event.from_entry(entry_id, fields, run_id) for entry_id, fields in entries]
    last = len(entries) - 1
    return [
        Event.from_entry(entry_id, fields, run_id)
        for i, (entry_id, fields) in enumerate(entries)
        if i == last or _may_end(fields)
    ]


_RUN_EVENT = b'{"type":"run.'
"""How every run event's document starts (``make_payload`` writes ``type`` first)."""


def _may_end(fields: Mapping[bytes, bytes]) -> bool:
    """Whether a stream entry may be a ``run.*`` event (one whose document does not start
    as ``make_payload``'s do is parsed, to be sure)."""
    doc = fields.get(FIELD, b"")
    return doc.startswith(_RUN_EVENT) or not doc.startswith(b'{"type":"')


@dataclass(frozen=True)
class Follow:
    """How to read the stream of ``run_id``: replay after ``after`` (or, without
    ``replay``, start at the stream's current end), then follow (``follow``) until a
    status in ``stop`` ends the run (an empty ``stop``: until the consumer stops)."""

    run_id: str
    after: str | None = None
    replay: bool = True
    follow: bool = True
    stop: frozenset[str] = TERMINAL
    block_ms: int = defaults.FOLLOW_BLOCK_MS
    timeout: float | None = None
    """Seconds before ``RunTimeout``, a ``TimeoutError`` (checked before each XREAD)."""
    clock: Callable[[], float] = time.monotonic
    patience: float | None = None
    """Seconds of Redis outage the drivers sit through (re-sending the command) before
    they raise ``RedisUnavailable``; None: ``timeout``, and without one as long as it
    lasts."""
    tail: str | None = None
    """Without ``replay``: the stream's last id as the caller knows it, the run not ended
    then (a run it just submitted: its ``run.queued`` id). The follow starts there without
    reading the status and the tail first (one round trip less)."""
    ends_only: bool = False
    """For a reader that only waits for the end (``RunHandle.wait``, the API's sync
    invocation): batches hold only the events that may end the run (``run.*``) and each
    read's last, reads are of at most ``WAITER_PAGE`` entries, and after a full one the
    reader skips to the stream's tail (with the status, at once). It then neither reads
    nor parses most of a long run's span events (in-process, that took the GIL from the
    run itself)."""

    def __post_init__(self) -> None:
        if self.block_ms < 1:  # XREAD BLOCK 0 would block forever
            raise ValueError(f"block_ms must be >= 1, got {self.block_ms}")

    # --- the core ---------------------------------------------------------------
    def flow(self) -> Flow:
        """The sans-IO reader (see the module docstring)."""
        deadline = None if self.timeout is None else self.clock() + self.timeout
        status: str | None = None  # not read yet (a known ``tail``)
        if self.replay:
            status = yield from self._status()
        elif self.tail is None:
            status, tail = yield from self._status_and_tail()
        else:
            tail = self.tail
        if self.replay:
            cursor, last = yield from self._pages(self.after)
            if not self.follow or self._ends(last):
                return
        else:  # the tail may be an earlier attempt's end (a resumed run): the status decides
            if not self.follow or status in self.stop:
                return
            cursor = tail
        yield []
        idle = self.replay  # the status and the tail were read at once: nothing came between
        while True:
            if idle and self.stop:
                status = yield from self._status()
                if status in self.stop:
                    yield from self._pages(cursor)
                    return
            block = self._block(deadline)
            if block is None:  # past the deadline
                if status is None:  # not read yet (a known tail): it may have ended
                    status = yield from self._status()
                    if status in self.stop:
                        yield from self._pages(cursor)
                        return
                raise RunTimeout(self.run_id, status, self.timeout or 0.0)
            batch, full = yield from self._read(cursor, block)
            yield batch
            if batch:
                cursor = batch[-1].id
                if self._ends(batch[-1]):
                    return
                if full and self.ends_only:  # behind a long run: skip to its tail
                    status, cursor = yield from self._status_and_tail()
                    if status in self.stop:
                        return
            idle = not batch

    def _status(self) -> Generator[Command, Any, str]:
        raw = cast("bytes | None", (yield CALL.hget(keys.run(self.run_id), "status")))
        if raw is None:
            raise RunNotFound(self.run_id)
        return raw.decode()

    def _pages(self, after: str | None) -> Generator[Command | list[Event], Any, _Position]:
        """Replay after ``after`` in XRANGE pages (one batch each)."""
        stream, cursor, last = keys.run_events(self.run_id), after or "0-0", None
        start = "-" if cursor in ("0", "0-0") else f"({cursor}"
        while True:
            command = CALL.xrange(stream, min=start, max="+", count=defaults.REPLAY_PAGE)
            page = cast(StreamEntries, (yield command))
            if page:
                batch = _events(page, self.run_id, self.ends_only)
                yield batch
                last = batch[-1]
                cursor, start = last.id, f"({last.id}"
            if len(page) < defaults.REPLAY_PAGE:
                return cursor, last

    def _status_and_tail(self) -> Generator[Command, Any, tuple[str, str]]:
        """The record's status and the stream's last id (none yet: ``0-0``), read at once
        (one script: no event can come between them)."""
        run, stream = keys.run(self.run_id), keys.run_events(self.run_id)
        status, last = cast(
            "list[bytes | None]", (yield CALL.script(STATUS_AND_TAIL, 2, run, stream))
        )
        if status is None:
            raise RunNotFound(self.run_id)
        return status.decode(), last.decode() if last is not None else "0-0"

    def _read(self, cursor: str, block: int) -> Generator[Command, Any, tuple[list[Event], bool]]:
        """One XREAD BLOCK: the events after ``cursor``, up to the first that ends the run;
        and whether the read was full (more may follow at once)."""
        stream = keys.run_events(self.run_id)
        count = WAITER_PAGE if self.ends_only else defaults.REPLAY_PAGE
        command = CALL.xread({stream: cursor}, block=block, count=count)
        reply = cast("StreamsReply | None", (yield command))
        entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
        batch = _events(entries, self.run_id, self.ends_only)
        for i, event in enumerate(batch):
            if self._ends(event):
                return batch[: i + 1], False
        return batch, len(entries) >= count

    def _ends(self, event: Event | None) -> bool:
        """``event`` ends the follow: a ``run.*`` end whose status is in ``stop``."""
        return event is not None and event.terminal and event.type.removeprefix("run.") in self.stop

    def _block(self, deadline: float | None) -> int | None:
        """Milliseconds the next XREAD may block; None once past ``deadline``."""
        if deadline is None:
            return self.block_ms
        left = deadline - self.clock()
        if left <= 0:
            return None
        return max(1, min(self.block_ms, math.ceil(left * 1000)))

    # --- the drivers ------------------------------------------------------------
    def batches(self, client: redis.Redis | None = None) -> Iterator[list[Event]]:
        """Drive ``flow()`` on a sync client: the event batches (``[]``: nothing new)."""
        r = client or sync_redis()
        flow, outage = self.flow(), self._outage()
        reply: Any = None
        try:
            while (step := _step(flow, reply)) is not None:
                if isinstance(step, Command):
                    reply = _call(r, step, outage)
                else:
                    reply = None
                    yield step
        finally:
            flow.close()

    async def abatches(self, client: aredis.Redis | None = None) -> AsyncIterator[list[Event]]:
        """Async twin of ``batches``."""
        r = client or async_redis()
        flow, outage = self.flow(), self._outage()
        reply: Any = None
        try:
            while (step := _step(flow, reply)) is not None:
                if isinstance(step, Command):
                    reply = await _acall(r, step, outage)
                else:
                    reply = None
                    yield step
        finally:
            flow.close()

    def _outage(self) -> Outage:
        patience = self.timeout if self.patience is None else self.patience
        return Outage(f"following run {self.run_id}", patience, clock=self.clock)


WAITER_PAGE = 16
"""Entries an ``ends_only`` reader reads at most at once (a short run's batches fit)."""

STATUS_AND_TAIL = """
local status = redis.call('HGET', KEYS[1], 'status')
local tail = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
return {status, tail[1] and tail[1][1] or false}
"""
"""A run's status and its stream's last id, or nil for either (KEYS: record, stream)."""


def _call(r: redis.Redis, command: Command, outage: Outage) -> Any:
    """Make ``command`` on ``r`` (``script``: ``store.scripts.run_script_sync``), sent again
    after a backoff while Redis is unreachable."""
    if command.method == "script":
        return outage.call(lambda: run_script_sync(r, *command.args))
    return outage.call(lambda: getattr(r, command.method)(*command.args, **command.kwargs))


async def _acall(r: aredis.Redis, command: Command, outage: Outage) -> Any:
    """Async twin of ``_call``."""
    if command.method == "script":
        return await outage.acall(lambda: run_script(r, *command.args))
    method = getattr(r, command.method)
    return await outage.acall(lambda: method(*command.args, **command.kwargs))


def _step(flow: Flow, reply: Any) -> Command | list[Event] | None:
    """The flow's next step given ``reply`` to its last one; None once it ended."""
    try:
        return flow.send(reply)
    except StopIteration:
        return None
