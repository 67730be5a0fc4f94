"""Redis access: the connection in force and the embedded Redis."""

from . import partitions as partitions  # installs the source of keys.partitions()
from .connection import (
    aclose_async_redis,
    async_redis,
    close_with_loop,
    is_cluster,
    redis_url,
    run_in_new_loop,
    sync_redis,
)
from .embedded import EmbeddedRedis

__all__ = [
    "EmbeddedRedis",
    "aclose_async_redis",
    "async_redis",
    "close_with_loop",
    "is_cluster",
    "redis_url",
    "run_in_new_loop",
    "sync_redis",
]
