"""A namespace's partition count, fixed in Redis once chosen.

The first process to use a namespace stores its ``AIFLOW_PARTITIONS`` in
``keys.partition_count()`` (``SET NX``); every process then uses the stored count, and
warns when its own setting differs (a namespace's runs cannot move between partitions:
a run's id names its partition). ``keys.partitions()`` asks this module once per
namespace (installed as its source on import); while Redis is unreachable it falls back
to the setting and asks again next time.
"""

from __future__ import annotations

import logging
import os

import redis

from .. import defaults, keys
from ..config import namespace, settings
from ..errors import RedisUnavailable

__all__ = ["fix", "stored"]

log = logging.getLogger("aiflow_nb.partitions")


def fix(client: redis.Redis) -> int | None:
    """The namespace's partition count: stored now if no process stored one before. For
    another namespace than the process's own (``config.use_namespace``: a dashboard
    reading it) only read: None when it has none yet."""
    wanted = settings().partitions
    key = keys.partition_count()
    if namespace() != settings().namespace:
        found = client.get(key)
        return int(found) if found is not None else None
    client.set(key, wanted, nx=True)
    raw = client.get(key)
    count = int(raw) if raw is not None else wanted
    explicit = "AIFLOW_PARTITIONS" in os.environ or wanted != defaults.PARTITIONS
    if count != wanted and explicit:
        log.warning(
            "namespace %r has %d partitions (fixed in Redis when it was first used); "
            "AIFLOW_PARTITIONS=%d is ignored",
            namespace(),
            count,
            wanted,
        )
    return count


def stored() -> int | None:
    """``fix`` on the connection in force; None while Redis is unreachable."""
    from .connection import sync_redis

    try:
        return fix(sync_redis())
    except (RedisUnavailable, redis.ConnectionError, redis.TimeoutError, OSError):
        return None


keys.install_partition_source(stored)
