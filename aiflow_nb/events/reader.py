"""Replay-then-follow readers of a run's event stream, one event at a time.

Thin wrappers of ``follow.Follow`` (the one follow primitive): replay pages through the
stream with XRANGE, then, unless the last event ends the run, XREAD BLOCK follows from
the last id seen. Ids only move forward, so a reader that arrives at any time gets every
event exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import redis
import redis.asyncio as aredis

from .. import defaults
from .follow import Follow
from .model import Event

__all__ = ["aread_events", "read_events"]


def read_events(
    run_id: str,
    after: str | None = None,
    follow: bool = True,
    client: redis.Redis | None = None,
    block_ms: int = defaults.FOLLOW_BLOCK_MS,
) -> Iterator[Event]:
    """Every event after ``after`` (an event id), then the live tail until the run ends."""
    for batch in Follow(run_id, after, follow=follow, block_ms=block_ms).batches(client):
        yield from batch


async def aread_events(
    run_id: str,
    after: str | None = None,
    follow: bool = True,
    client: aredis.Redis | None = None,
    block_ms: int = defaults.FOLLOW_BLOCK_MS,
) -> AsyncIterator[Event]:
    """Async twin of ``read_events``."""
    async for batch in Follow(run_id, after, follow=follow, block_ms=block_ms).abatches(client):
        for event in batch:
            yield event
