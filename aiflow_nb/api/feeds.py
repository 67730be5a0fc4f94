"""One live Redis reader per followed run per API process, shared by all its followers.

A hundred browsers following one run cost one ``XREAD`` per event, not a hundred; each
event is decoded once and, per format, encoded once; events that arrive together (a replay
page, a burst of LLM tokens) reach a follower as one batch, so one write. A follower:

1. subscribes to the run's feed (created on first use; it starts at the stream's current
   last id, read before anyone replays),
2. replays the history after its ``after`` id itself (``Follow``, no follow),
3. then takes the feed's live events, skipping any its replay already had.

Ids only grow, so 2 + 3 together give every event exactly once. A feed ends when its last
follower leaves. When Redis is unreachable for longer than ``API_OUTAGE_PATIENCE``, the
feed and its followers' streams end with ``RedisUnavailable`` (the stream says so; the
client resumes with ``Last-Event-ID`` once Redis is back, meanwhile requests get 503). A
follower that falls more than ``MAX_BACKLOG`` events behind is dropped (its stream ends;
it resumes with ``Last-Event-ID`` like after any disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .. import defaults
from ..cancelling import cancel_and_wait
from ..events.follow import Follow
from ..events.model import Event
from ..events.refs import aresolve, resolved
from .pool import api_redis

__all__ = ["MAX_BACKLOG", "FeedHub", "Shared"]

log = logging.getLogger("aiflow_nb.api")
MAX_BACKLOG = 10_000
"""Events a follower may lag behind its run's feed before it is dropped."""


@dataclass(slots=True)
class Shared:
    """An event handed to followers, with its encodings (by format) computed once."""

    event: Event
    encoded: dict[str, bytes] = field(default_factory=dict)
    resolved: bool = False
    """The values the event refers to (``events/refs.py``) are read in."""


async def _resolve(run_id: str, batch: list[Shared]) -> list[Shared]:
    """Read the large values the batch's events refer to (run record, journal) into
    them, once per event for all followers: a follower sees every value."""
    todo = [s for s in batch if not s.resolved and not resolved(s.event.data)]
    if todo:
        await aresolve(api_redis(), run_id, [s.event.data for s in todo])
    for item in batch:
        item.resolved = True
    return batch


def _key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class _Lagging(Exception):
    pass


class _Feed:
    def __init__(self, hub: FeedHub, run_id: str) -> None:
        self.hub = hub
        self.run_id = run_id
        self.queues: set[asyncio.Queue[Shared | BaseException | None]] = set()
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._read(), name=f"aiflow-feed-{run_id}")

    async def _read(self) -> None:
        # from the stream's last id, until the last follower leaves (stop=(): a run that
        # ended may be resumed)
        spec = Follow(
            self.run_id, replay=False, stop=frozenset(), patience=defaults.API_OUTAGE_PATIENCE
        )
        try:
            async for batch in spec.abatches(api_redis()):
                self.ready.set()
                for event in batch:
                    self._deliver(Shared(event))
                if not self.queues:
                    break
        except Exception as exc:  # Redis went away: every follower's stream ends
            self.ready.set()
            for queue in self.queues:
                queue.put_nowait(exc)
        finally:
            if self.hub.feeds.get(self.run_id) is self:
                del self.hub.feeds[self.run_id]

    def _deliver(self, item: Shared) -> None:
        for queue in list(self.queues):
            if queue.qsize() >= MAX_BACKLOG:
                self.queues.discard(queue)
                queue.put_nowait(_Lagging(f"follower of run {self.run_id} fell behind"))
            else:
                queue.put_nowait(item)


async def _tick(
    queue: asyncio.Queue[Shared | BaseException | None], every: float, idle: list[bool]
) -> None:
    """Put ``None`` in ``queue`` after each ``every`` seconds in which no event went out."""
    while True:
        await asyncio.sleep(every)
        if idle[0]:
            queue.put_nowait(None)
        idle[0] = True


async def _replay(run_id: str, after: str | None) -> AsyncIterator[list[Shared]]:
    """The history after ``after``, one batch per replay page."""
    spec = Follow(run_id, after, follow=False, patience=defaults.API_OUTAGE_PATIENCE)
    async for batch in spec.abatches(api_redis()):
        yield [Shared(event) for event in batch]


async def _drain(queue: asyncio.Queue[Shared | BaseException | None]) -> list[Shared | None]:
    """Everything in ``queue`` (waiting for the first); raises a feed's error."""
    items = [await queue.get()]
    while not queue.empty():
        items.append(queue.get_nowait())
    for item in items:
        if isinstance(item, BaseException):
            raise item
    return items  # type: ignore[return-value]


def _fresh(items: list[Shared | None], seen: tuple[int, int]) -> tuple[list[Shared], bool]:
    """The events after ``seen`` up to the first terminal one, and whether a tick came."""
    batch: list[Shared] = []
    for item in items:
        if item is not None and _key(item.event.id) > seen:
            batch.append(item)
            if item.event.terminal:
                break
    return batch, any(item is None for item in items)


class FeedHub:
    """The live feeds of one API app, by run id."""

    def __init__(self) -> None:
        self.feeds: dict[str, _Feed] = {}

    def _subscribe(self, run_id: str, queue: asyncio.Queue[Shared | BaseException | None]) -> _Feed:
        feed = self.feeds.get(run_id)
        if feed is None:
            feed = self.feeds[run_id] = _Feed(self, run_id)
        feed.queues.add(queue)
        return feed

    async def follow(
        self, run_id: str, after: str | None = None, keepalive: float | None = None
    ) -> AsyncIterator[list[Shared] | None]:
        """Batches of the events of ``run_id`` after ``after`` (replay pages, then whatever
        arrived together live) until a terminal one; ``None`` after each ``keepalive``
        seconds without an event (send a keep-alive)."""
        queue: asyncio.Queue[Shared | BaseException | None] = asyncio.Queue()
        feed = self._subscribe(run_id, queue)
        idle = [True]
        ticker = (
            asyncio.create_task(_tick(queue, keepalive, idle), name=f"aiflow-sse-{run_id}")
            if keepalive
            else None
        )
        try:
            await feed.ready.wait()
            last: Event | None = None
            async for batch in _replay(run_id, after):
                last = batch[-1].event
                yield await _resolve(run_id, batch)
            if last is not None and last.terminal:
                return
            seen = _key(last.id) if last else (_key(after) if after else (0, 0))
            while True:
                batch, tick = _fresh(await _drain(queue), seen)
                if batch:
                    idle[0] = False
                    seen = _key(batch[-1].event.id)
                    yield await _resolve(run_id, batch)
                    if batch[-1].event.terminal:
                        return
                elif tick:
                    yield None  # idle: time for a keep-alive
        finally:
            if ticker is not None:
                ticker.cancel()
            feed.queues.discard(queue)
            if not feed.queues and not feed.task.done():
                if self.feeds.get(run_id) is feed:
                    del self.feeds[run_id]  # a newcomer starts a fresh feed
                with contextlib.suppress(BaseException):  # this request's own cancel too
                    await cancel_and_wait(feed.task)
