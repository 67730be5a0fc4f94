"""Deployment versions (blue/green): every run records the version that started it and
goes on that version's queues; a worker only takes runs of its own version.

``deploy("v2")`` points new runs at v2 (``{ns}:deploy:active``); runs in flight on v1 go
on with v1 workers, which can be drained once ``deployments()`` shows none left. A
process reads the active version at most once per ``DEPLOY_CACHE_TTL`` seconds
(``current_version``): its own ``deploy()`` takes effect at once, another process's within
that long.

Example::

    deploy("v2")
    for row in deployments():
        print(row["version"], row["active"], row["workers"], row["running"], row["queued"])
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from .. import defaults, keys
from ..events.status import RunStatus
from ..store import redis_url, sync_redis
from . import registered
from .presence import live_workers

__all__ = ["active_version", "current_version", "deploy", "deployments", "register_version"]

_lock = threading.Lock()
_read: dict[tuple[str, str], tuple[float, str | None]] = {}
"""(Redis URL, active-version key) -> (monotonic time read, the active version)."""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _check(version: str) -> str:
    version = version.strip()
    if not version or any(c.isspace() for c in version) or ":" in version:
        raise ValueError(
            f"a deployment version is a non-empty word without ':' or spaces, got {version!r}"
        )
    return version


def active_version(client: redis.Redis | None = None) -> str | None:
    """The version new runs are pinned to, or None when nothing was deployed."""
    raw = (client or sync_redis()).get(keys.deploy_active())
    return _text(raw) if raw else None


def current_version(client: redis.Redis | None = None) -> str | None:
    """``active_version``, read from Redis at most once per ``DEPLOY_CACHE_TTL`` seconds
    in this process (what ``submit`` pins new runs to)."""
    where = (redis_url(), keys.deploy_active())
    now = time.monotonic()
    with _lock:
        hit = _read.get(where)
    if hit is not None and now - hit[0] < defaults.DEPLOY_CACHE_TTL:
        return hit[1]
    version = active_version(client)
    with _lock:
        _read[where] = (now, version)
    return version


def register_version(version: str, client: redis.Redis | None = None) -> None:
    """Add ``version`` to the known versions (``{ns}:deployments``, what ``deployments()``
    lists and the monitor sweeps) unless this process did already."""
    if registered.known(keys.deployments(), version):
        return
    (client or sync_redis()).zadd(keys.deployments(), {version: time.time()}, nx=True)
    registered.remember(keys.deployments(), version)


def deploy(version: str, client: redis.Redis | None = None) -> str | None:
    """Point new runs at ``version``; return the version that was active before."""
    r = client or sync_redis()
    version = _check(version)
    pipe = r.pipeline(transaction=True)
    pipe.getset(keys.deploy_active(), version)
    pipe.zadd(keys.deployments(), {version: time.time()}, nx=True)
    before, _ = pipe.execute()
    with _lock:  # this process's next submit goes to the new version at once
        _read[(redis_url(), keys.deploy_active())] = (time.monotonic(), version)
    registered.remember(keys.deployments(), version)
    return _text(before) if before else None


def _runs_by_version(r: redis.Redis) -> dict[str, int]:
    ids = [i for part in range(keys.partitions()) for i in r.smembers(keys.running(part))]
    pipe = r.pipeline(transaction=False)
    for run_id in ids:
        pipe.hmget(keys.run(_text(run_id)), "version", "status")
    counts: dict[str, int] = {}
    for version, status in pipe.execute() if ids else []:
        if version is not None and status == RunStatus.RUNNING.encode():
            counts[_text(version)] = counts.get(_text(version), 0) + 1
    return counts


def _queued(r: redis.Redis, version: str) -> int:
    """Entries not yet taken by a worker, over the version's queues (one per workflow and
    one for registered code; a queue holds only unfinished requests)."""
    return sum(
        _waiting(r, _text(queue))
        for part in range(keys.partitions())
        for queue in r.smembers(keys.queues(version, part))
    )


def _waiting(r: redis.Redis, queue: str) -> int:
    pipe = r.pipeline(transaction=False)
    pipe.xlen(queue)
    pipe.xpending(queue, keys.queue_group)
    try:
        length, pending = pipe.execute()
    except redis.ResponseError:  # no consumer group yet: nothing was taken
        return int(r.xlen(queue))
    return max(0, int(length) - int(pending["pending"]))


def deployments(client: redis.Redis | None = None) -> list[dict[str, Any]]:
    """One row per known version: ``version``, ``active``, ``workers`` (live),
    ``draining`` (of those), ``running`` and ``queued`` runs; the active version first."""
    r = client or sync_redis()
    active = active_version(r) or defaults.VERSION
    versions = [_text(v) for v in r.zrange(keys.deployments(), 0, -1)]
    workers = live_workers(r)
    for doc in workers:
        if doc.get("version") and doc["version"] not in versions:
            versions.append(doc["version"])
    running = _runs_by_version(r)
    rows = []
    for version in versions:
        mine = [w for w in workers if w.get("version") == version]
        rows.append(
            {
                "version": version,
                "active": version == active,
                "workers": len(mine),
                "draining": sum(1 for w in mine if w.get("state") == "draining"),
                "running": running.get(version, 0),
                "queued": _queued(r, version),
            }
        )
    rows.sort(key=lambda row: not row["active"])
    return rows
