"""Listing runs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import redis

from ..events.status import RECORDED
from ..serialization import loads
from ..store import sync_redis
from .listing import newest, records

__all__ = ["RUN_COLUMNS", "list_runs", "namespaces", "runs"]

RUN_COLUMNS = [
    "run_id",
    "workflow",
    "status",
    "version",
    "attempt",
    "created_at",
    "started_at",
    "ended_at",
    "duration",
    "error",
]


def list_runs(
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    client: redis.Redis | None = None,
) -> list[dict[str, Any]]:
    """Run records, newest first, filtered by workflow and status (one of ``RECORDED``:
    a typo would otherwise list nothing, silently)."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if status is not None and status not in RECORDED:
        raise ValueError(f"status must be one of {', '.join(RECORDED)}; got {status!r}")
    r = client or sync_redis()
    ids = newest(r, workflow, batch=max(limit * 2, 100))
    for _ in zip(range(offset), ids, strict=False):  # skip the first ``offset``
        pass
    wanted = None if status is None else status.encode()
    found = records(r, ids, limit, lambda raw: wanted is None or raw.get(b"status") == wanted)
    return [rec for raw, _ in found if (rec := _row(raw)) is not None]


def _row(raw: dict[bytes, bytes]) -> dict[str, Any] | None:
    if not raw:
        return None
    rec = {k.decode(): v.decode() for k, v in raw.items()}
    names = ("created_at", "started_at", "ended_at")
    times = {n: float(rec[n]) if rec.get(n) else None for n in names}
    start, end = times["started_at"], times["ended_at"]
    err = loads(rec["error"]) if rec.get("error") else None
    return {
        "run_id": rec.get("run_id"),
        "workflow": rec.get("workflow"),
        "status": rec.get("status"),
        "version": rec.get("version"),
        "attempt": int(rec.get("attempt", 0)),
        **times,
        "duration": end - start if start and end else None,
        "error": f"{err.get('type')}: {err.get('message')}" if err else None,
    }


def runs(workflow: str | None = None, status: str | None = None, limit: int = 50) -> pd.DataFrame:
    """Recent runs as a DataFrame (newest first)."""
    frame = pd.DataFrame(list_runs(workflow, status, limit), columns=RUN_COLUMNS)
    for col in ("created_at", "started_at", "ended_at"):
        frame[col] = pd.to_datetime(frame[col], unit="s", utc=True)
    return frame


def namespaces(client: redis.Redis | None = None) -> list[str]:
    """The namespaces with runs in this Redis (each partition's ``{<ns>:<p>}:runs``
    index: one SCAN), sorted."""
    r = client or sync_redis()
    found = set()
    for key in r.scan_iter(match="{*}:runs", count=1000, _type="zset"):
        tag = key.decode()[1 : -len("}:runs")]
        found.add(tag.rpartition(":")[0])
    return sorted(found)
