"""The Redis in force: ``REDIS_URL`` when set, else the embedded Redis.

``REDIS_URL=redis+cluster://host:port[,host:port...]`` selects redis-py's cluster
clients (``store.cluster``), with the same retries and timeouts; ``is_cluster()`` tells
code which it has (the one place to branch on it: PUBLISH or SPUBLISH, say). Every client
is made by ``new_sync_client`` / ``new_async_client`` (the API's pool and the lease check
client too), so none can miss the cluster.

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
from typing import Any, TypeVar, cast

import redis
import redis.asyncio as aredis
import redis.asyncio.retry as aretry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from .. import defaults, keys
from ..config import settings
from ..errors import RedisUnavailable
from .cluster import async_cluster, is_cluster_url, sync_cluster
from .embedded import EmbeddedRedis
from .failures import unreachable
from .packing import packed

__all__ = [
    "aclose_async_redis",
    "async_redis",
    "close_with_loop",
    "is_cluster",
    "new_async_client",
    "new_sync_client",
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


def is_cluster() -> bool:
    """True when the Redis in force is a Redis Cluster (``redis+cluster://``)."""
    return is_cluster_url(redis_url())


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


def new_sync_client(url: str, **overrides: Any) -> redis.Redis:
    """A new synchronous client of ``url``: ``redis.Redis``, or ``redis.RedisCluster`` for a
    cluster URL (typed as ``redis.Redis``: the command API is the same; what differs is
    asked of ``is_cluster()``). ``overrides`` replace the default retries and timeouts."""
    kwargs = {**_kwargs(), **overrides}
    if is_cluster_url(url):
        kwargs.pop("health_check_interval", None)  # not a cluster client's option
        return cast(redis.Redis, sync_cluster(url, **kwargs))
    return redis.Redis.from_url(url, **kwargs)


def new_async_client(url: str, *, wait: float | None = None, **overrides: Any) -> aredis.Redis:
    """A new asynchronous client of ``url`` (``redis.asyncio.RedisCluster`` for a cluster
    URL; see ``new_sync_client``). It connects on first use. ``wait``: on a single Redis,
    a command waits up to that many seconds for a free connection (redis-py's
    ``BlockingConnectionPool``) instead of failing once ``max_connections`` are in use (a
    cluster has a pool per node and does not wait). Its connections pack with hiredis
    (``store/packing.py``)."""
    kwargs = {**_kwargs(asynchronous=True), **overrides}
    if is_cluster_url(url):
        return cast(aredis.Redis, async_cluster(url, **kwargs))
    if wait is None:
        client = aredis.Redis.from_url(url, **kwargs)
    else:  # the client owns the pool: aclose() disconnects it
        client = aredis.Redis.from_pool(
            aredis.BlockingConnectionPool.from_url(url, timeout=wait, **kwargs)
        )
    pool = client.connection_pool
    pool.connection_class = packed(pool.connection_class)  # store/packing.py
    return client


def ping(client: redis.Redis) -> None:
    """Raise ``RedisUnavailable`` naming the URL when ``client`` cannot reach Redis."""
    try:
        client.ping()
    except Exception as exc:
        if unreachable(exc):
            raise RedisUnavailable(redis_url(), str(exc)) from exc
        raise


def sync_redis() -> redis.Redis:
    """The process's shared synchronous client (checked with a PING on creation)."""
    global _sync
    with _lock:
        if _sync is None:
            url = redis_url()
            try:
                client = new_sync_client(url)
            except Exception as exc:  # a cluster client connects as it is made
                if unreachable(exc):
                    raise RedisUnavailable(url, str(exc)) from exc
                raise
            ping(client)
            _sync = client
        return _sync


def async_redis() -> aredis.Redis:
    """The running loop's asynchronous client."""
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        client = new_async_client(redis_url())
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


def _release(client: redis.Redis) -> None:
    """Drop a replaced client's connections; like a ``redis.Redis``, a cluster client whose
    reference someone still holds stays usable (``RedisCluster.close()`` would break it)."""
    if isinstance(client, redis.RedisCluster):
        client.disconnect_connection_pools()
    else:
        client.close()


def reset() -> None:
    """Forget clients and the URL (after ``configure()`` changed them)."""
    global _sync, _url
    with _lock:
        if _sync is not None:
            _release(_sync)
        _sync = None
        _url = None
        _async.clear()  # each loop's next async_redis() makes a new one; _made keeps the old
    keys.forget_partitions()  # the new Redis or namespace has its own count
