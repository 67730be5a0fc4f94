"""Living through a Redis outage: what counts as one, how long to wait, what to log.

A long-lived loop (a worker's consume, heartbeat and cancel listener, the monitor, a
reader following a run) keeps one ``Outage``; ``call(fn)`` / ``acall(fn)`` do the loop
below for one call. On a connection error it calls
``failed(exc)`` and sleeps the seconds returned (jittered, growing: redis-py's
``ExponentialWithJitterBackoff``), then tries the same thing again; on success it calls
``ok()``. The first failure logs one warning and the first success after it one info
line, so an outage costs two log lines however long it lasts. Past ``patience`` seconds
of outage ``failed`` raises ``RedisUnavailable`` instead (None: never)::

    outage = Outage("worker consume")
    while True:
        try:
            reply = await client.xreadgroup(...)
        except CONNECTION_ERRORS as exc:
            await asyncio.sleep(outage.failed(exc))
            continue
        outage.ok()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from redis.backoff import ExponentialWithJitterBackoff

from .. import defaults
from ..errors import RedisUnavailable
from .connection import redis_url
from .failures import CONNECTION_ERRORS

__all__ = ["CONNECTION_ERRORS", "Outage"]

T = TypeVar("T")

log = logging.getLogger("aiflow_nb.redis")


@dataclass
class Outage:
    """One loop's view of Redis being down (see the module docstring)."""

    what: str
    """The loop, for the log lines (``worker w1 consume``)."""
    patience: float | None = None
    """Seconds of outage before ``failed`` raises ``RedisUnavailable``; None: never."""
    base: float = defaults.OUTAGE_BACKOFF_BASE
    cap: float = defaults.OUTAGE_BACKOFF_CAP
    clock: Callable[[], float] = time.monotonic
    since: float | None = field(default=None, init=False)
    """When the current outage began (``clock()``), None while Redis answers."""
    failures: int = field(default=0, init=False)

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt; the seconds to wait before the next one."""
        now = self.clock()
        if self.since is None:
            self.since = now
            log.warning("%s: Redis unreachable (%s); retrying until it is back", self.what, exc)
        self.failures += 1
        if self.patience is not None and now - self.since >= self.patience:
            raise RedisUnavailable(redis_url(), str(exc)) from exc
        backoff = ExponentialWithJitterBackoff(cap=self.cap, base=self.base)
        return float(backoff.compute(self.failures))

    def ok(self) -> None:
        """Record a successful attempt (logs the end of an outage)."""
        if self.since is not None:
            down = self.clock() - self.since
            log.warning("%s: Redis is back after %.1f s; resuming", self.what, down)
            self.since, self.failures = None, 0

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, called again after a backoff while Redis is unreachable."""
        while True:
            try:
                value = fn()
            except CONNECTION_ERRORS as exc:
                time.sleep(self.failed(exc))
                continue
            self.ok()
            return value

    async def acall(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Async twin of ``call``."""
        while True:
            try:
                value = await fn()
            except CONNECTION_ERRORS as exc:
                await asyncio.sleep(self.failed(exc))
                continue
            self.ok()
            return value

    @property
    def down(self) -> bool:
        """An outage is under way."""
        return self.since is not None
