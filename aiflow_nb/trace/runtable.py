"""``RunIndex``: the rows of the runs table, kept current by cheap polling.

Each ``refresh`` lists run records (``access.runs.list_runs``) and reads, in one
pipeline, only the events each listed run wrote since the last refresh, folding
them into that run's ``RunTotals``. A finished run costs nothing once read.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import redis

from .. import keys
from ..access.runs import list_runs
from ..events.model import Event
from ..events.status import RunStatus
from ..ops.routing import with_waiting
from ..store import sync_redis
from .totals import RunTotals

__all__ = ["RUN_TABLE_COLUMNS", "RunIndex"]

RUN_TABLE_COLUMNS = [
    "run_id",
    "workflow",
    "status",
    "started",
    "duration",
    "waiting",
    "spans",
    "retries",
    "errors",
    "tokens",
    "cost",
    "note",
]


class RunIndex:
    """Runs-table rows, newest first; ``refresh()`` to bring them up to date."""

    def __init__(self, client: redis.Redis | None = None, limit: int = 200) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._client = client
        self.limit = limit
        self.totals: dict[str, RunTotals] = {}

    @property
    def client(self) -> redis.Redis:
        return self._client or sync_redis()

    def refresh(
        self,
        workflow: str | None = None,
        status: str | None = None,
        since: float | None = None,
        now: float | None = None,
    ) -> pd.DataFrame:
        """The table for runs created at or after ``since`` (epoch seconds)."""
        now = time.time() if now is None else now
        records = with_waiting(list_runs(workflow, status, self.limit, client=self.client))
        if since is not None:
            records = [r for r in records if (r["created_at"] or 0) >= since]
        self._catch_up([r["run_id"] for r in records])
        rows = [self._row(rec, now) for rec in records]
        frame = pd.DataFrame(rows, columns=RUN_TABLE_COLUMNS)
        frame["started"] = pd.to_datetime(frame["started"], unit="s", utc=True)
        return frame

    def _catch_up(self, run_ids: list[str]) -> None:
        stale = [rid for rid in run_ids if not self._settled(rid)]
        if not stale:
            return
        pipe = self.client.pipeline(transaction=False)
        for rid in stale:
            last = self.totals.get(rid, RunTotals()).last_id
            pipe.xrange(keys.run_events(rid), min=f"({last}" if last else "-", max="+")
        for rid, entries in zip(stale, pipe.execute(), strict=True):
            totals = self.totals.setdefault(rid, RunTotals())
            for entry_id, fields in entries:
                totals.apply(Event.from_entry(entry_id, fields, rid))

    def _settled(self, run_id: str) -> bool:
        """A completed or cancelled run whose terminal event was read changes no more."""
        t = self.totals.get(run_id)
        return t is not None and t.status in (RunStatus.COMPLETED, RunStatus.CANCELLED)

    def _row(self, rec: dict[str, Any], now: float) -> dict[str, Any]:
        t = self.totals.get(rec["run_id"]) or RunTotals()
        started = rec["started_at"] or t.started
        end = rec["ended_at"] or (
            None
            if rec["status"] in (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING)
            else t.ended
        )
        until = end if end is not None else now
        duration = None if started is None else until - started - t.gaps.idle(until)
        return {
            **t.row(now),
            "run_id": rec["run_id"],
            "workflow": rec["workflow"],
            "status": rec["status"],
            "started": started,
            "duration": duration,
            "note": rec.get("waiting"),  # queued with no live worker able to take it: why
        }
