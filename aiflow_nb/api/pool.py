"""The API's own asynchronous Redis client: a blocking pool sized for many followers.

Every SSE follower replays through Redis and every waiting ``POST /run`` blocks on a
stream, so a busy API holds far more connections at once than a worker does. A
``BlockingConnectionPool`` makes a burst wait for a free connection instead of failing
with "Too many connections". One client per event loop and Redis URL, closed with the
loop's other clients (``store.aclose_async_redis``, awaited by the loop's owner).
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aredis

from .. import defaults
from ..store import close_with_loop, redis_url
from ..store.connection import new_async_client

__all__ = ["api_redis"]

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, aredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


def api_redis() -> aredis.Redis:
    """The running loop's API client (remade when the Redis URL in force changes)."""
    loop = asyncio.get_running_loop()
    url = redis_url()
    held = _clients.get(loop)
    if held is not None and held[0] == url:
        return held[1]
    client = new_async_client(  # a cluster: one pool per node, each up to the same size
        url, max_connections=defaults.API_REDIS_CONNECTIONS, wait=defaults.API_REDIS_WAIT
    )
    _clients[loop] = (url, client)
    return close_with_loop(client)  # also the one a new URL replaces: it may be in use
