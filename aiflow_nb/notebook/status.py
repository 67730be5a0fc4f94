"""The kernel's one-line status: which Redis, how many workers are live, and whether this
kernel runs an in-process worker."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import settings
from ..errors import RedisUnavailable
from ..ops.daemon import KIND
from ..ops.local import local_worker
from ..ops.presence import live_workers
from ..redaction import shown_url
from ..store import redis_url, sync_redis

__all__ = ["KernelStatus", "kernel_status"]


@dataclass(frozen=True)
class KernelStatus:
    """What ``%aiflow worker status`` and ``%load_ext aiflow_nb`` report."""

    redis: str
    """The Redis URL as shown (``shown_url``: no password)."""
    embedded: bool
    namespace: str
    workers: int
    in_kernel: bool
    started: bool = False
    error: str | None = None
    daemon: str | None = None
    """This machine's code worker daemon: running, started or starting (None: off)."""

    def line(self) -> str:
        if self.error:
            return f"aiflow-nb: {self.error}"
        where = f"embedded Redis ({self.redis})" if self.embedded else f"Redis {self.redis}"
        plural = "" if self.workers == 1 else "s"
        if self.in_kernel:
            worker = "in-kernel worker started" if self.started else "in-kernel worker running"
        else:
            worker = "no in-kernel worker"
        daemon = f" · code worker daemon {self.daemon}" if self.daemon else ""
        return (
            f"aiflow-nb: {where} · namespace {self.namespace} · {self.workers} "
            f"out-of-kernel worker{plural} live{daemon} · {worker}"
        )


def kernel_status(started: bool = False, daemon: str | None = None) -> KernelStatus:
    """The status now (workers live: active ones, not this kernel's, not ones whose
    process is gone, not the code worker daemon: ``daemon`` says that one); a Redis that
    cannot be reached is reported, not raised."""
    s = settings()
    try:
        url = redis_url()
        mine = local_worker()
        others = [
            w
            for w in live_workers(sync_redis(), active=True)
            if (mine is None or w.get("id") != mine.worker.id) and w.get("kind") != KIND
        ]
    except RedisUnavailable as exc:
        return KernelStatus(
            redis=shown_url(s.redis_url) if s.redis_url else "embedded",
            embedded=s.redis_url is None,
            namespace=s.namespace,
            workers=0,
            in_kernel=False,
            error=str(exc),
        )
    return KernelStatus(
        redis=shown_url(url),
        embedded=s.redis_url is None,
        namespace=s.namespace,
        workers=len(others),
        in_kernel=mine is not None,
        started=started,
        daemon=daemon,
    )
