"""Redis Cluster clients for ``REDIS_URL=redis+cluster://host:port[,host:port...]``.

The URL names seed nodes (any of the masters; redis-py discovers the rest), optionally
``user:password@`` before them and ``rediss+cluster://`` for TLS (managed clusters).
``is_cluster_url`` says which kind a URL is; ``sync_cluster`` / ``async_cluster`` make
redis-py's cluster clients with the keyword arguments the single-node clients get (the
same ``Retry``, timeouts). When no node answers, redis-py raises a bare
``RedisClusterException`` from its slot discovery (at start, or after a node failed);
these clients raise ``ClusterUnreachable`` (a ``redis.ConnectionError``) instead, so
every outage path catches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode as AsyncNode
from redis.asyncio.cluster import NodesManager as AsyncNodesManager
from redis.cluster import ClusterNode
from redis.cluster import NodesManager as SyncNodesManager
from redis.exceptions import RedisClusterException

from ..errors import ConfigError
from ..redaction import shown_url
from .failures import ClusterUnreachable, unreachable
from .packing import packed

__all__ = ["ClusterUrl", "async_cluster", "is_cluster_url", "parse", "sync_cluster"]

_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return url.split("://", 1)[0].lower() in _SCHEMES


@dataclass(frozen=True)
class ClusterUrl:
    """A parsed cluster URL: seeds, credentials, TLS."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    ssl: bool = False

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ssl": self.ssl} if self.ssl else {}
        if self.username:
            out["username"] = self.username
        if self.password:
            out["password"] = self.password
        return out


def parse(url: str) -> ClusterUrl:
    """Parse a cluster URL; ``ConfigError`` saying what is wrong with a bad one."""
    if not is_cluster_url(url):
        raise ConfigError(
            f"not a Redis Cluster URL (redis+cluster://host:port,...): {shown_url(url)!r}"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 host
        raise ConfigError(f"cannot parse the Redis Cluster URL {shown_url(url)!r}: {exc}") from None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    seeds = tuple(_seed(s, url) for s in hosts.split(",") if s.strip())
    if not seeds:
        raise ConfigError(f"a Redis Cluster URL names at least one host:port: {shown_url(url)!r}")
    return ClusterUrl(
        seeds,
        unquote(user) or None,
        unquote(password) or None,
        parts.scheme.lower().startswith("rediss"),
    )


def _seed(text: str, url: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"seed {text!r} of {shown_url(url)!r} is not host:port")
    return host.strip("[]"), int(port)


def sync_cluster(url: str, **kwargs: Any) -> redis.RedisCluster:
    """redis-py's ``RedisCluster`` for ``url`` (it connects to learn the slots)."""
    spec = parse(url)
    nodes = [ClusterNode(host, port) for host, port in spec.seeds]  # type: ignore[no-untyped-call]
    try:
        client = redis.RedisCluster(startup_nodes=nodes, **spec.kwargs(), **kwargs)
    except RedisClusterException as exc:
        raise _unreachable(exc) from exc
    client.nodes_manager.__class__ = _SyncNodes
    return client


def async_cluster(url: str, **kwargs: Any) -> aredis.RedisCluster:
    """redis-py's asyncio ``RedisCluster`` for ``url`` (it connects on first use)."""
    spec = parse(url)
    nodes = [AsyncNode(host, port) for host, port in spec.seeds]
    client = _AsyncCluster(startup_nodes=nodes, **spec.kwargs(), **kwargs)
    client.nodes_manager.__class__ = _AsyncNodes
    shared = client.nodes_manager.connection_kwargs  # the nodes discovered later
    shared["connection_class"] = packed(shared.get("connection_class", aredis.Connection))
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = packed(node.connection_class)
    return client


class _AsyncCluster(aredis.RedisCluster):
    """redis-py's asyncio ``RedisCluster``, learning the slots before it routes a command.

    redis-py 8.1 picks a command's node before it initializes: with no slots known yet
    (a new client, or one its own ``aclose()`` reset) a keyed command such as SMEMBERS
    goes to a random primary, and MOVED comes back from two in three. Every fifth MOVED
    (``reinitialize_steps``) calls ``aclose()``, which disconnects every connection of
    every node, those other coroutines are still using too: one mid-handshake raises
    ``AttributeError: 'NoneType' object has no attribute 'writelines'``. Initialized
    first, the command goes to its slot's node.
    """

    __slots__ = ()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)


class _SyncNodes(SyncNodesManager):
    """redis-py's slot discovery, raising ``ClusterUnreachable`` when no node answers."""

    __slots__ = ()

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise _unreachable(exc) from exc


class _AsyncNodes(AsyncNodesManager):
    """The asyncio twin of ``_SyncNodes``."""

    __slots__ = ()

    async def initialize(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise _unreachable(exc) from exc


def _unreachable(exc: RedisClusterException) -> Exception:
    """``ClusterUnreachable`` for redis-py's "cannot be connected" (every seed refused, at
    start or when it learns the slots again), else ``exc`` itself."""
    return ClusterUnreachable(str(exc)) if unreachable(exc) else exc
