"""Which workers are alive: heartbeat hashes with a TTL, indexed in a sorted set."""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from .. import keys
from ..store import sync_redis

__all__ = ["heartbeat_document", "live_workers"]


def live_workers(
    client: redis.Redis | None = None, version: str | None = None
) -> list[dict[str, Any]]:
    """Heartbeat documents of live workers (of ``version`` when given), newest first."""
    r = client or sync_redis()
    ids = [i.decode() for i in cast("list[bytes]", r.zrevrange(keys.workers(), 0, -1))]
    if not ids:
        return []
    pipe = r.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hgetall(keys.worker(worker_id))
    found: list[dict[str, Any]] = []
    stale: list[str] = []
    for worker_id, raw in zip(ids, pipe.execute(), strict=True):
        if not raw:
            stale.append(worker_id)
            continue
        doc = {k.decode(): v.decode() for k, v in raw.items()}
        if version is None or doc.get("version") == version:
            found.append(doc)
    if stale:
        r.zrem(keys.workers(), *stale)
    return found


def heartbeat_document(
    worker_id: str, version: str, state: str, runs: list[str], pid: int, host: str
) -> dict[str, Any]:
    return {
        "id": worker_id,
        "version": version,
        "state": state,
        "runs": ",".join(runs),
        "in_hand": len(runs),
        "pid": pid,
        "host": host,
        "last_heartbeat": time.time(),
    }
