"""Declare shared rate limits: ``limits.set("openai:gpt-4o-mini", rpm=500, tpm=200_000)``.

Limits live in Redis, so one ``set`` applies to every worker and kernel on that Redis
and namespace. LLM calls consult ``"<provider>:<model>"`` and ``"<provider>"``.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import asdict, dataclass

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..config import namespace
from ..store import async_redis, sync_redis

__all__ = ["RateLimit", "adeclared", "clear", "declared", "get", "names", "set"]

_FIELDS = ("rpm", "tpm", "concurrency", "burst")
_LEVELS = ("r_level", "r_ts", "t_level", "t_ts")


@dataclass(frozen=True)
class RateLimit:
    """Requests and tokens per minute, concurrent calls, and the burst (seconds of budget
    that may be spent at once)."""

    name: str
    rpm: float | None = None
    tpm: float | None = None
    concurrency: int | None = None
    burst: float = defaults.RATE_LIMIT_BURST

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "{} "):
            raise ValueError(
                f"a rate limit needs a non-empty name without braces or spaces, got {self.name!r}"
            )
        for label in ("rpm", "tpm", "burst"):
            value = getattr(self, label)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"{label} must be a number > 0, got {value!r}")
        conc = self.concurrency
        if conc is not None and (not isinstance(conc, int) or isinstance(conc, bool) or conc < 1):
            raise ValueError(f"concurrency must be an int >= 1, got {conc!r}")
        if self.rpm is None and self.tpm is None and conc is None:
            raise ValueError(f"rate limit {self.name!r}: give rpm, tpm or concurrency")


def set(  # noqa: A001 - the public name the API promises: limits.set(...)
    name: str,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    concurrency: int | None = None,
    burst: float = defaults.RATE_LIMIT_BURST,
    client: redis.Redis | None = None,
) -> RateLimit:
    """Declare (or replace) the shared limit ``name``; its buckets start full."""
    limit = RateLimit(name, rpm, tpm, concurrency, burst)
    r = client or sync_redis()
    values = {k: v for k, v in asdict(limit).items() if k in _FIELDS}
    pipe = r.pipeline(transaction=True)  # the limit's own slot
    pipe.hdel(keys.ratelimit(name), *_FIELDS, *_LEVELS)
    pipe.hset(keys.ratelimit(name), mapping={k: v for k, v in values.items() if v is not None})
    pipe.execute()
    r.sadd(keys.ratelimits(), name)  # the namespace's metadata (another slot)
    _known.pop(namespace(), None)
    return limit


def get(name: str, client: redis.Redis | None = None) -> RateLimit | None:
    """The limit ``name``, or None when none is declared."""
    raw = (client or sync_redis()).hmget(keys.ratelimit(name), *_FIELDS)
    if all(v is None for v in raw[:3]):
        return None
    rpm, tpm, conc, burst = (float(v) if v is not None else None for v in raw)
    return RateLimit(
        name,
        rpm,
        tpm,
        int(conc) if conc is not None else None,
        burst if burst is not None else defaults.RATE_LIMIT_BURST,
    )


def clear(name: str, client: redis.Redis | None = None) -> bool:
    """Remove the limit ``name``; True if there was one."""
    r = client or sync_redis()
    existed = r.delete(keys.ratelimit(name), keys.ratelimit_inflight(name))  # one slot
    r.srem(keys.ratelimits(), name)
    _known.pop(namespace(), None)
    return bool(existed)


def names(client: redis.Redis | None = None) -> builtins.list[str]:
    """Names of the limits declared in this namespace, sorted."""
    return sorted(_decode((client or sync_redis()).smembers(keys.ratelimits())))


_known: dict[str, tuple[float, frozenset[str]]] = {}
"""namespace -> (when the list expires, names of declared limits)."""


def _decode(members: builtins.set[bytes | str]) -> frozenset[str]:
    return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)


def _cached() -> frozenset[str] | None:
    entry = _known.get(namespace())
    return entry[1] if entry is not None and entry[0] > time.monotonic() else None


def _remember(found: frozenset[str]) -> frozenset[str]:
    _known[namespace()] = (time.monotonic() + defaults.RATE_LIMIT_NAMES_TTL, found)
    return found


def declared(client: redis.Redis | None = None) -> frozenset[str]:
    """Names of the declared limits, as this process last saw them (at most
    ``defaults.RATE_LIMIT_NAMES_TTL`` old), so calls under no limit skip Redis."""
    found = _cached()
    if found is None:
        found = _remember(_decode((client or sync_redis()).smembers(keys.ratelimits())))
    return found


async def adeclared(client: aredis.Redis | None = None) -> frozenset[str]:
    """Async twin of ``declared``."""
    found = _cached()
    if found is None:
        members = await (client or async_redis()).smembers(keys.ratelimits())
        found = _remember(_decode(members))
    return found
