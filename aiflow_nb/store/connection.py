"""The Redis in force: ``REDIS_URL`` when set, else the embedded Redis.

``sync_redis()`` returns one shared client per process; ``async_redis()`` one
per event loop (redis-py's asyncio clients are bound to the loop that made them).
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aredis

from .. import defaults
from ..config import settings
from ..errors import RedisUnavailable
from .embedded import EmbeddedRedis

__all__ = ["async_redis", "ping", "redis_url", "reset", "sync_redis"]

_lock = threading.Lock()
_sync: redis.Redis | None = None
_url: str | None = None
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def redis_url() -> str:
    """The URL in force, starting the embedded Redis if that is the one."""
    global _url
    if _url is None:
        _url = settings().redis_url or EmbeddedRedis.default().ensure_started()
    return _url


def _kwargs() -> dict[str, object]:
    return {
        "socket_connect_timeout": defaults.REDIS_CONNECT_TIMEOUT,
        "health_check_interval": 30,
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
        client = aredis.Redis.from_url(redis_url(), **_kwargs())  # type: ignore[arg-type]
        _async[loop] = client
    return client


def reset() -> None:
    """Forget clients and the URL (after ``configure()`` changed them)."""
    global _sync, _url
    with _lock:
        if _sync is not None:
            _sync.close()
        _sync = None
        _url = None
        _async.clear()
