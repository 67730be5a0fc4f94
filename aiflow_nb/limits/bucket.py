"""Shared rate limits: a Redis token bucket per name for requests and tokens per minute,
plus a concurrency cap, shared by every process that uses the same Redis and namespace.

A call *reserves* its place: the Lua script takes a request (and its estimated tokens)
from the bucket even when that drives the level below zero, and answers how long the
caller must wait for its turn. Waiters therefore queue in arrival order with one round
trip each, instead of polling. Time is Redis's own clock (``TIME``), common to all
processes. Concurrency slots are a sorted set of holders with an expiry, so a holder
that dies frees its slot after ``defaults.RATE_LIMIT_LEASE_TTL``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..store import async_redis, sync_redis

__all__ = ["ACQUIRE", "RELEASE", "Lease", "aacquire", "acquire"]

ACQUIRE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c = redis.call('HMGET', KEYS[1], 'rpm', 'tpm', 'concurrency', 'burst',
                     'r_level', 'r_ts', 't_level', 't_ts')
local rpm, tpm, conc = tonumber(c[1]), tonumber(c[2]), tonumber(c[3])
local burst = tonumber(c[4]) or 1
if conc then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= conc then return {0, '0', 0} end
end
local function take(per_min, level, ts, need, lf, tf)
  local rate = per_min / 60000.0
  local cap = math.max(1, per_min / 60.0 * burst)
  level, ts = tonumber(level), tonumber(ts)
  if level == nil then level, ts = cap, now end
  level = math.min(cap, level + math.max(0, now - ts) * rate) - need
  redis.call('HSET', KEYS[1], lf, tostring(level), tf, now)
  if level < 0 then return -level / rate end
  return 0
end
local wait = 0
if rpm then wait = math.max(wait, take(rpm, c[5], c[6], 1, 'r_level', 'r_ts')) end
if tpm then
  wait = math.max(wait, take(tpm, c[7], c[8], tonumber(ARGV[1]), 't_level', 't_ts'))
end
if conc then redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2]) end
local settle = 0
if conc or tpm then settle = 1 end
return {1, tostring(wait), settle}
"""

RELEASE = """
local d = tonumber(ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if d ~= 0 then
  local c = redis.call('HMGET', KEYS[1], 'tpm', 'burst', 't_level')
  if c[1] and c[3] then
    local cap = math.max(1, tonumber(c[1]) / 60.0 * (tonumber(c[2]) or 1))
    redis.call('HSET', KEYS[1], 't_level', tostring(math.min(cap, tonumber(c[3]) - d)))
  end
end
return 1
"""
"""Frees the holder's slot and settles the token bucket of one name (its two keys, one
slot); a lease of several names calls it once per name."""


@dataclass
class Lease:
    """Permission for one call; ``release()`` when it ends (it frees the concurrency slots
    and settles the token buckets of ``names``, the limits that have either)."""

    names: tuple[str, ...]
    holder: str
    tokens: int
    waited: float = 0.0
    """Seconds spent queued for the limits."""
    released: bool = field(default=False, repr=False)

    def _args(self, used: int | None) -> list[Any]:
        delta = 0 if used is None else used - self.tokens
        return [delta, self.holder]

    def release(self, used_tokens: int | None = None, client: redis.Redis | None = None) -> None:
        """Free the concurrency slot; settle the token bucket with the real usage."""
        if self.released or not self.names:
            return
        self.released = True
        script = (client or sync_redis()).register_script(RELEASE)
        for name in self.names:  # one script per limit (each its own slot)
            script(keys=_keys(name), args=self._args(used_tokens))

    async def arelease(
        self, used_tokens: int | None = None, client: aredis.Redis | None = None
    ) -> None:
        """Async twin of ``release``."""
        if self.released or not self.names:
            return
        self.released = True
        script = (client or async_redis()).register_script(RELEASE)
        for name in self.names:  # one script per limit (each its own slot)
            await script(keys=_keys(name), args=self._args(used_tokens))

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _keys(name: str) -> list[str]:
    return [keys.ratelimit(name), keys.ratelimit_inflight(name)]


def _poll() -> float:
    return defaults.RATE_LIMIT_POLL * (0.5 + random.random())


def _new_lease(names: str | Iterable[str], tokens: int) -> tuple[tuple[str, ...], Lease, list[Any]]:
    """(names, an empty lease, ACQUIRE's args)."""
    names = (names,) if isinstance(names, str) else tuple(names)
    lease = Lease((), secrets.token_hex(8), tokens)
    return names, lease, [tokens, lease.holder, int(defaults.RATE_LIMIT_LEASE_TTL * 1000)]


def _granted(lease: Lease, name: str, reply: list[Any]) -> float | None:
    """Seconds ACQUIRE's ``reply`` says to wait under ``name`` (None: no free slot yet);
    the lease notes ``name`` when it holds something there to release."""
    ok, ms, held = reply
    if not int(ok):
        return None
    if int(held):
        lease.names += (name,)
    return float(ms) / 1000


def acquire(
    names: str | Iterable[str],
    tokens: int = 0,
    *,
    client: redis.Redis | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> Lease:
    """Wait for a turn under every limit in ``names`` (unknown names do not limit).

    ``tokens`` is the estimate taken from a tokens-per-minute bucket. Interrupted while
    waiting, it gives back what it took. Example::

        with limits.acquire("openai:gpt-4o-mini", tokens=900):
            ...  # call the provider
    """
    names, lease, args = _new_lease(names, tokens)
    script = (client or sync_redis()).register_script(ACQUIRE)
    t0 = time.monotonic()
    try:
        wait = 0.0
        for name in names:
            while (granted := _granted(lease, name, script(keys=_keys(name), args=args))) is None:
                sleep(_poll())
            wait = max(wait, granted)
        if wait > 0:
            sleep(wait)
    except BaseException:
        lease.release(0, client)
        raise
    lease.waited = time.monotonic() - t0
    return lease


async def aacquire(
    names: str | Iterable[str],
    tokens: int = 0,
    *,
    client: aredis.Redis | None = None,
) -> Lease:
    """Async twin of ``acquire`` (cancelled while waiting, it gives back what it took)."""
    names, lease, args = _new_lease(names, tokens)
    script = (client or async_redis()).register_script(ACQUIRE)
    t0 = time.monotonic()
    try:
        wait = 0.0
        for name in names:
            while (
                granted := _granted(lease, name, await script(keys=_keys(name), args=args))
            ) is None:
                await asyncio.sleep(_poll())
            wait = max(wait, granted)
        if wait > 0:
            await asyncio.sleep(wait)
    except BaseException:
        await lease.arelease(0, client)
        raise
    lease.waited = time.monotonic() - t0
    return lease
