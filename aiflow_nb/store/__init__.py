"""Redis access: the connection in force and the embedded Redis."""

from .connection import async_redis, redis_url, sync_redis
from .embedded import EmbeddedRedis

__all__ = ["EmbeddedRedis", "async_redis", "redis_url", "sync_redis"]
