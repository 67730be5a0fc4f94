"""What counts as Redis being unreachable, on a single node and on a cluster.

A Redis Cluster adds its own ways of being down to the connection errors: the cluster or
a master is down (``CLUSTERDOWN``, ``MASTERDOWN``), a slot is being resharded
(``TRYAGAIN``), redirections go round past redis-py's limit (a MOVED/ASK storm: a
``ClusterError``), a slot has no node (``SlotNotCoveredError``), no seed node answers
(``ClusterUnreachable``, raised where redis-py raises a bare ``RedisClusterException``).
All of them are outages: the API answers 503 and the long-lived loops back off and retry
(``store.outage``). A cluster error that is a bug (``CROSSSLOT``) is none of them.
"""

from __future__ import annotations

import redis
from redis.exceptions import (
    ClusterError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

__all__ = ["CLUSTER_ERRORS", "CONNECTION_ERRORS", "ClusterUnreachable", "unreachable"]


class ClusterUnreachable(redis.ConnectionError):
    """No seed node of the cluster answered (redis-py: "Redis Cluster cannot be connected")."""


CLUSTER_ERRORS: tuple[type[Exception], ...] = (
    ClusterError,  # ClusterDownError, MasterDownError, redirections past redis-py's TTL
    TryAgainError,
    SlotNotCoveredError,
)
"""A cluster's own outages (beyond the connection errors)."""

CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # also BusyLoadingError, ClusterUnreachable
    redis.TimeoutError,
    OSError,
    *CLUSTER_ERRORS,
)
"""What a loop treats as Redis being unreachable (any other error is a bug to surface)."""


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says Redis (or the cluster) cannot be reached."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    return type(exc) is RedisClusterException and "cannot be connected" in str(exc)
