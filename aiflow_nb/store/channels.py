"""Pub/sub notifications that work on a single Redis and on a cluster.

On a single Redis, ``PUBLISH`` / ``SUBSCRIBE``; on a Redis Cluster (``is_cluster()``),
sharded pub/sub, ``SPUBLISH`` / ``SSUBSCRIBE`` (Redis >= 7.0): the message goes only to
the master holding the channel's slot instead of being broadcast over the whole cluster
bus. A channel is then a key like any other (a hash tag puts it in a partition's slot)::

    publish(sync_redis(), keys.cancel_channel(), run_id)

    async for data in listen(async_redis(), keys.cancel_channel()):
        ...                      # bytes; connection errors propagate (the caller's Outage)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import redis
import redis.asyncio as aredis

from .. import defaults
from .connection import is_cluster

__all__ = ["listen", "publish"]


def publish(client: redis.Redis, channel: str, message: str | bytes) -> int:
    """Publish ``message`` on ``channel``; the number of subscribers that received it."""
    if is_cluster():
        return int(client.spublish(channel, message))
    return int(client.publish(channel, message))


async def listen(
    client: aredis.Redis, channel: str, subscribed: Callable[[], object] = lambda: None
) -> AsyncIterator[bytes]:
    """The messages published on ``channel`` from now on, until the caller stops;
    ``subscribed()`` is called once the subscription is in place."""
    pubsub = client.pubsub()
    try:
        if is_cluster():
            await cast(Any, client).initialize()  # learn the slots (it connects lazily)
            async for data in _sharded(pubsub, channel, subscribed):
                yield data
        else:
            await pubsub.subscribe(channel)
            subscribed()
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield message["data"]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: unannotated


async def _sharded(
    pubsub: Any, channel: str, subscribed: Callable[[], object]
) -> AsyncIterator[bytes]:
    await pubsub.ssubscribe(channel)
    subscribed()
    while True:
        message = await pubsub.get_sharded_message(
            ignore_subscribe_messages=True, timeout=defaults.SHARDED_PUBSUB_POLL
        )
        if message is not None and message.get("type") in ("smessage", b"smessage"):
            yield cast(bytes, message["data"])
