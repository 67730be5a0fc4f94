"""Replay-then-follow readers of a run's event stream (sync and async twins).

Replay pages through the stream with XRANGE; then, unless the last event is
terminal, XREAD BLOCK follows from the last id seen. Ids only move forward, so
a reader that arrives at any time gets every event exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import cast

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..errors import RunNotFound
from ..store import async_redis, sync_redis
from ..store.replies import StreamEntries, StreamsReply
from .model import Event

__all__ = ["aread_events", "read_events"]


def _start(after: str | None) -> str:
    return "-" if not after or after == "0" else f"({after}"


def _tail(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> Event | None:
    """The stream's last event (the reader asked to start after it or later)."""
    return Event.from_entry(*entries[0]) if entries else None


def _ended(status: bytes | None) -> bool:
    return status in (b"completed", b"failed", b"cancelled")


def _check_exists(client: redis.Redis, run_id: str) -> None:
    if not client.exists(keys.run(run_id)):
        raise RunNotFound(run_id)


def read_events(
    run_id: str,
    after: str | None = None,
    follow: bool = True,
    client: redis.Redis | None = None,
    block_ms: int = defaults.FOLLOW_BLOCK_MS,
) -> Iterator[Event]:
    """Every event after ``after`` (an event id), then the live tail until a terminal event."""
    r = client or sync_redis()
    _check_exists(r, run_id)
    stream = keys.run_events(run_id)
    last: Event | None = None
    start = _start(after)
    while True:
        page = cast(StreamEntries, r.xrange(stream, min=start, max="+", count=defaults.REPLAY_PAGE))
        for entry_id, fields in page:
            last = Event.from_entry(entry_id, fields)
            yield last
        if len(page) < defaults.REPLAY_PAGE:
            break
        start = f"({last.id}" if last else start
    if last is None:
        last = _tail(cast(StreamEntries, r.xrevrange(stream, count=1)))
    if not follow or (last is not None and last.terminal):
        return
    cursor = last.id if last else (after or "0-0")
    while True:
        reply = cast(
            "StreamsReply | None",
            r.xread({stream: cursor}, block=block_ms, count=defaults.REPLAY_PAGE),
        )
        if not reply and _ended(cast("bytes | None", r.hget(keys.run(run_id), "status"))):
            # idle, and the run ended (its last event was not a run.* one): the events
            # written with the final status are in the stream now (one atomic write)
            tail = cast(StreamEntries, r.xrange(stream, min=f"({cursor}", max="+"))
            yield from (Event.from_entry(entry_id, fields) for entry_id, fields in tail)
            return
        for _, entries in reply or []:
            for entry_id, fields in entries:
                event = Event.from_entry(entry_id, fields)
                cursor = event.id
                yield event
                if event.terminal:
                    return


async def aread_events(
    run_id: str,
    after: str | None = None,
    follow: bool = True,
    client: aredis.Redis | None = None,
    block_ms: int = defaults.FOLLOW_BLOCK_MS,
) -> AsyncIterator[Event]:
    """Async twin of ``read_events``."""
    r = client or async_redis()
    if not await r.exists(keys.run(run_id)):
        raise RunNotFound(run_id)
    stream = keys.run_events(run_id)
    last: Event | None = None
    start = _start(after)
    while True:
        page = cast(
            StreamEntries, await r.xrange(stream, min=start, max="+", count=defaults.REPLAY_PAGE)
        )
        for entry_id, fields in page:
            last = Event.from_entry(entry_id, fields)
            yield last
        if len(page) < defaults.REPLAY_PAGE:
            break
        start = f"({last.id}" if last else start
    if last is None:
        last = _tail(cast(StreamEntries, await r.xrevrange(stream, count=1)))
    if not follow or (last is not None and last.terminal):
        return
    cursor = last.id if last else (after or "0-0")
    while True:
        reply = cast(
            "StreamsReply | None",
            await r.xread({stream: cursor}, block=block_ms, count=defaults.REPLAY_PAGE),
        )
        if not reply and _ended(cast("bytes | None", await r.hget(keys.run(run_id), "status"))):
            tail = cast(StreamEntries, await r.xrange(stream, min=f"({cursor}", max="+"))
            for entry_id, fields in tail:
                yield Event.from_entry(entry_id, fields)
            return
        for _, entries in reply or []:
            for entry_id, fields in entries:
                event = Event.from_entry(entry_id, fields)
                cursor = event.id
                yield event
                if event.terminal:
                    return
