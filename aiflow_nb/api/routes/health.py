"""``GET /healthz``: Redis reachable, workers seen."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ...ops.presence import live_workers
from ...store import sync_redis
from ..schemas import Health

__all__ = ["healthz", "router"]

router = APIRouter(tags=["health"])


def _check() -> Health:
    sync_redis().ping()
    workers = live_workers()
    return Health(status="ok" if workers else "no_workers", redis="ok", workers=len(workers))


@router.get(
    "/healthz",
    response_model=Health,
    summary="Redis reachable, workers seen",
    description="200 while Redis answers (status ``no_workers`` when no worker "
    "heartbeat is live: runs would wait in the queue); 503 when Redis is unreachable.",
)
async def healthz() -> Health:
    return await run_in_threadpool(_check)
