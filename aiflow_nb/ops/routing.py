"""Routing by capability: a run goes on the queue of what it needs, and a worker reads
only the queues of what it can execute.

- a run of registered notebook code (it has a ``code`` bundle, ``ops/code.py``) goes on
  ``keys.code_queue(version)``, read by workers that accept registered code (``ALL``);
  put back after its worker died or handed it back, on ``keys.code_queue(version,
  resumed=True)``, read by those and by the code worker daemon (``RESUMED``), which so
  never takes a fresh run from a kernel that can run it in its own environment;
- any other run goes on ``keys.queue(version, workflow)``, read by the workers whose
  process defines that workflow (imported from ``--app`` modules or defined in a kernel).

A run nobody live can execute stays ``queued``; ``waiting_reason`` says why.

Example::

    run_queue("v1", "report", None, partition=0)   # -> "{aiflow:0}:queue:v1:wf:report"
    served_queues("v1", ["report"], code=ALL, partition=0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import redis

from .. import keys
from ..events.status import RunStatus
from ..store import sync_redis
from .presence import live_workers

__all__ = [
    "ALL",
    "NONE",
    "RESUMED",
    "CodeRuns",
    "Need",
    "need_of",
    "run_queue",
    "served_queues",
    "serving",
    "waiting_reason",
    "with_waiting",
]


CodeRuns = Literal["all", "resumed", "none"]
"""Which runs of registered code a worker takes (advertised as its heartbeat's ``code``)."""
ALL: CodeRuns = "all"
RESUMED: CodeRuns = "resumed"
NONE: CodeRuns = "none"


@dataclass(frozen=True)
class Need:
    """What a run needs from a worker: its version, and its workflow by name or as code."""

    version: str
    workflow: str
    code: bool = False
    resumed: bool = False
    """It ran before (its next attempt resumes from the journal)."""

    def queue(self, partition: int) -> str:
        """The queue such a run goes on in ``partition``."""
        return run_queue(self.version, self.workflow, self.code, self.resumed, partition)

    def served_by(self, doc: dict[str, Any]) -> bool:
        """Whether the worker of heartbeat document ``doc`` can execute such a run."""
        if doc.get("version") != self.version:
            return False
        if not self.code:
            return self.workflow in doc.get("serves", [])
        return doc.get("code") == ALL or (self.resumed and doc.get("code") == RESUMED)


def need_of(record: dict[str, Any]) -> Need:
    """The need of a run record (decoded, str values)."""
    return Need(
        str(record.get("version") or ""),
        str(record.get("workflow") or ""),
        bool(record.get("code")),
        int(record.get("attempt") or 0) > 0,
    )


def run_queue(
    version: str,
    workflow: str,
    code: str | bool | None,
    resumed: bool = False,
    partition: int = 0,
) -> str:
    """The queue a run of ``workflow`` (with a code bundle or not; ``resumed``: put back
    on the queue after it ran) goes on in its ``partition``."""
    if code:
        return keys.code_queue(version, resumed, partition)
    return keys.queue(version, workflow, partition)


def served_queues(
    version: str, workflows: Iterable[str], code: CodeRuns, partition: int
) -> list[str]:
    """The queues of ``partition`` a worker of ``version`` reads: one per workflow it
    defines, plus the code queues of the registered code it takes (one slot)."""
    streams = [keys.queue(version, name, partition) for name in sorted(set(workflows))]
    resumed = [keys.code_queue(version, True, partition)] if code in (ALL, RESUMED) else []
    fresh = [keys.code_queue(version, False, partition)] if code == ALL else []
    return [*fresh, *resumed, *streams]


def serving(need: Need, client: redis.Redis | None = None) -> list[dict[str, Any]]:
    """The live, active workers that can execute a run with ``need``."""
    return [w for w in live_workers(client, need.version, active=True) if need.served_by(w)]


def waiting_reason(
    record: dict[str, Any],
    client: redis.Redis | None = None,
    workers: list[dict[str, Any]] | None = None,
) -> str | None:
    """Why a queued run waits when no live worker can take it (what to do included);
    None when it is not queued or someone serves it. ``workers``: the live, active
    heartbeat documents when the caller read them already (one read for many runs)."""
    if record.get("status") != RunStatus.QUEUED:
        return None
    need = need_of(record)
    if workers is None:
        workers = live_workers(client, need.version, active=True)
    if any(need.served_by(w) for w in workers):
        return None
    what = f"no live worker serves workflow {need.workflow!r} (version {need.version})"
    if need.code:
        return (
            f"{what}: it is registered notebook code; `%load_ext aiflow_nb` in a kernel or "
            "`aiflow worker` runs it"
        )
    return (
        f"{what}: define it again in a kernel (or `%aiflow resume {record.get('run_id')}` "
        "there), or start `aiflow worker --app MODULE` with the module defining it"
    )


def with_waiting(
    recs: list[dict[str, Any]], client: redis.Redis | None = None
) -> list[dict[str, Any]]:
    """Give each queued record its ``waiting`` reason (None when someone serves it); the
    live workers are read once, and only when a run is queued. A record without its
    ``code`` field (a runs-table row) has it read."""
    queued = [rec for rec in recs if rec.get("status") == RunStatus.QUEUED]
    if not queued:
        return recs
    r = client or sync_redis()
    bare = [rec for rec in queued if "code" not in rec]
    if bare:
        pipe = r.pipeline(transaction=False)
        for rec in bare:
            pipe.hget(keys.run(str(rec["run_id"])), "code")
        for rec, code in zip(bare, pipe.execute(), strict=True):
            rec["code"] = code.decode() if code else None
    workers = live_workers(r, active=True)
    for rec in queued:
        rec["waiting"] = waiting_reason(rec, workers=workers)
    return recs
