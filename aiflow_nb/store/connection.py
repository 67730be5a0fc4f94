"""The Redis in force: ``REDIS_URL`` when set, else the embedded Redis.

``sync_redis()`` returns one shared client per process; ``async_redis()`` one
per event loop (redis-py's asyncio clients are bound to the loop that made them). Whoever
owns a loop awaits ``aclose_async_redis()`` before closing it (``run_in_new_loop`` does):
it closes those clients and any other registered with ``close_with_loop`` (the API's), so
no connection outlives its loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis
import redis.asyncio.retry as aretry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from .. import defaults
from ..config import settings
from ..errors import RedisUnavailable
from .embedded import EmbeddedRedis

__all__ = [
    "aclose_async_redis",
    "async_redis",
    "close_with_loop",
    "ping",
    "redis_url",
    "reset",
    "retry_policy",
    "run_in_new_loop",
    "sync_redis",
]

T = TypeVar("T")

_lock = threading.Lock()
_sync: redis.Redis | None = None
_url: str | None = None
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
    weakref.WeakKeyDictionary()
)
_made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[aredis.Redis]] = (
    weakref.WeakKeyDictionary()
)
"""Every client made on a loop (including those ``reset()`` replaced): to close with it."""


def redis_url() -> str:
    """The URL in force, starting the embedded Redis if that is the one."""
    global _url
    if _url is None:
        _url = settings().redis_url or EmbeddedRedis.default().ensure_started()
    return _url


def retry_policy(asynchronous: bool = False) -> Retry | aretry.Retry:
    """Every client's retries: a connection error re-sends the command ``REDIS_RETRIES``
    times, jittered (redis-py's ``Retry``); the long-lived loops back off past that
    (``store.outage``)."""
    backoff = ExponentialWithJitterBackoff(
        cap=defaults.REDIS_RETRY_CAP, base=defaults.REDIS_RETRY_BASE
    )
    return (aretry.Retry if asynchronous else Retry)(backoff, defaults.REDIS_RETRIES)


def _kwargs(asynchronous: bool = False) -> dict[str, object]:
    return {
        "socket_connect_timeout": defaults.REDIS_CONNECT_TIMEOUT,
        "health_check_interval": 30,
        "retry": retry_policy(asynchronous),
    }


def ping(client: redis.Redis) -> None:
    """Raise ``RedisUnavailable`` naming the URL when ``client`` cannot reach Redis."""
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise RedisUnavailable(redis_url(), str(exc)) from exc


def sync_redis() -> redis.Redis:
    """The process's shared synchronous client (checked with a PING on creation)."""
    global _sync
    with _lock:
        if _sync is None:
            client = redis.Redis.from_url(redis_url(), **_kwargs())
            ping(client)
            _sync = client
        return _sync


def async_redis() -> aredis.Redis:
    """The running loop's asynchronous client."""
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        client = aredis.Redis.from_url(redis_url(), **_kwargs(asynchronous=True))  # type: ignore[arg-type]
        _async[loop] = close_with_loop(client)
    return client


def close_with_loop(client: aredis.Redis) -> aredis.Redis:
    """Have ``aclose_async_redis()`` close ``client`` (bound to the running loop); returns it."""
    _made.setdefault(asyncio.get_running_loop(), []).append(client)
    return client


async def aclose_async_redis() -> None:
    """Close the running loop's clients (``async_redis()``'s and ``close_with_loop``'s): the
    last await of a loop's owner, or their connections are left open when the loop closes."""
    loop = asyncio.get_running_loop()
    _async.pop(loop, None)
    for client in _made.pop(loop, []):
        await client.aclose()


def run_in_new_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, closing the loop's Redis clients before the loop ends."""

    async def closing() -> T:
        try:
            return await main
        finally:
            await aclose_async_redis()

    return asyncio.run(closing())


def reset() -> None:
    """Forget clients and the URL (after ``configure()`` changed them)."""
    global _sync, _url
    with _lock:
        if _sync is not None:
            _sync.close()
        _sync = None
        _url = None
        _async.clear()  # each loop's next async_redis() makes a new one; _made keeps the old
