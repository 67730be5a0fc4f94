"""Retention: a finished run expires ``retention`` seconds after it ends; ``delete`` and
``prune`` remove finished runs now.

Every way a run ends (the executor's fenced terminal batch, ``recovery.fail_run``, a
crash past ``max_restarts``, the cancel of a queued run) sets, in the same atomic write, a
TTL on each of the run's keys (``keys.run_keys``: one hash slot) and records the run in
its partition's expiry index (``keys.expiry``: ``<run id> <workflow>`` -> when it
expires, epoch seconds). A run's
retention is its record's ``retention`` field (``@workflow(retention=...)``, written at
submit), else ``AIFLOW_RETENTION``. A re-queue (``submit.requeue``: resume, recovery,
hand-back) makes the keys persistent again: waiting and running runs never expire.

The run indexes (``keys.runs``, ``keys.workflow_runs``, ``keys.running``: one set of each
per partition) are sets whose members cannot expire: the monitor's sweep calls
``sweep_expired`` for each partition, which drops each run whose expiry has passed and
whose record is gone.

Example::

    delete("3f2a...")                                  # RunStateError if not finished
    prune(older_than=7 * 86400, workflow="ingest")     # -> how many were deleted
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..config import settings
from ..errors import RunNotFound, RunStateError
from ..events.fence import CURRENT_LUA
from ..events.status import TERMINAL
from ..events.writer import EventWriter
from ..store import sync_redis

__all__ = [
    "Progress",
    "delete",
    "expire",
    "expire_in_batch",
    "member",
    "persist",
    "prune",
    "retention_of",
    "sweep_expired",
]


def retention_of(recorded: str | bytes | float | None) -> float:
    """A run's retention in seconds: its record's ``retention`` field, else the setting."""
    if isinstance(recorded, bytes):
        recorded = recorded.decode()
    if recorded in (None, ""):
        return settings().retention
    return float(recorded)


def member(run_id: str, workflow: str) -> str:
    """The run's member of its expiry index (the workflow names its index)."""
    return f"{run_id} {workflow}"


def _split(raw: bytes | str) -> tuple[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    run_id, _, workflow = text.partition(" ")
    return run_id, workflow


def _ttl(seconds: float) -> tuple[int, float]:
    """A retention as a TTL (ms, at least 1) and its seconds, at most ``RETENTION_MAX``."""
    seconds = min(seconds, defaults.RETENTION_MAX)
    return max(1, int(seconds * 1000)), seconds


def expire(pipe: Any, run_id: str, workflow: str, seconds: float) -> None:
    """Queue on ``pipe`` (a transaction, with the run's terminal write) the TTL of every
    key of the run and its expiry entry (one slot: the run's partition)."""
    ms, seconds = _ttl(seconds)
    for key in keys.run_keys(run_id):
        pipe.pexpire(key, ms)
    pipe.zadd(
        keys.expiry(keys.partition_of(run_id)),
        {member(run_id, workflow): time.time() + seconds},
    )


def expire_in_batch(
    writer: EventWriter, workflow: str, seconds: float, seeded: bool = True
) -> None:
    """``expire`` as commands of the run's fenced batch (after its terminal write, which
    deletes the lease: that key is skipped, as is the seed unless ``seeded``: a rerun)."""
    ms, seconds = _ttl(seconds)
    skip = {keys.run_lease(writer.run_id)} | (set() if seeded else {keys.run_seed(writer.run_id)})
    writer.expire([key for key in keys.run_keys(writer.run_id) if key not in skip], ms)
    expiry = keys.expiry(keys.partition_of(writer.run_id))
    writer.raw("zadd", expiry, time.time() + seconds, member(writer.run_id, workflow))


def persist(pipe: Any, run_id: str, workflow: str) -> None:
    """Queue on ``pipe`` what makes a re-queued run's keys persistent again."""
    for key in keys.run_keys(run_id):
        pipe.persist(key)
    pipe.zrem(keys.expiry(keys.partition_of(run_id)), member(run_id, workflow))


async def sweep_expired(
    client: aredis.Redis, partition: int, limit: int = defaults.EXPIRY_SWEEP_BATCH
) -> int:
    """Drop from ``partition``'s run indexes its runs whose expiry passed and whose keys
    are gone (a run made persistent again by a resume only leaves its expiry index); how
    many."""
    expiry = keys.expiry(partition)
    due = cast(
        "list[bytes]",
        await client.zrangebyscore(expiry, "-inf", time.time(), start=0, num=limit),
    )
    if not due:
        return 0
    pipe = client.pipeline(transaction=False)
    for raw in due:
        pipe.pttl(keys.run(_split(raw)[0]))
    ttls = await pipe.execute()
    pipe = client.pipeline(transaction=False)
    dropped = 0
    for raw, ttl in zip(due, ttls, strict=True):
        run_id, workflow = _split(raw)
        if ttl == -2:  # gone: expired (or deleted)
            _unindex(pipe, run_id, workflow)
            dropped += 1
        elif ttl == -1:  # persistent again (resumed): no longer due
            pipe.zrem(expiry, raw)
    await pipe.execute()
    return dropped


def _unindex(pipe: Any, run_id: str, workflow: str) -> None:
    part = keys.partition_of(run_id)
    pipe.zrem(keys.runs(part), run_id)
    if workflow:
        pipe.zrem(keys.workflow_runs(workflow, part), run_id)
    pipe.srem(keys.running(part), run_id)
    pipe.zrem(keys.expiry(part), member(run_id, workflow))


_DELETE = (
    CURRENT_LUA
    + """
-- aiflow: delete one finished run's keys (ops/retention.py); one slot.
-- KEYS: the run's keys, record first; ARGV: ended before (epoch s, '' = any), status ('' = any)
local s = redis.call('HMGET', KEYS[1], 'status', 'workflow', 'ended_at', 'idem')
if not s[1] then return {0} end
if not is_ended(s[1]) or (ARGV[2] ~= '' and s[1] ~= ARGV[2]) then return {1, s[1]} end
if ARGV[1] ~= '' and tonumber(s[3] or '0') > tonumber(ARGV[1]) then return {1, s[1]} end
redis.call('DEL', unpack(KEYS))
return {2, s[2] or '', s[4] or ''}
"""
)

_DEL_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _delete_page(
    r: redis.Redis, run_ids: list[str], before: float | None, status: str | None
) -> list[list[Any]]:
    """Delete the eligible runs of ``run_ids`` (each in its own slot), then their index
    entries; each run's script reply (0 missing, 1 kept, 2 deleted)."""
    pipe = r.pipeline(transaction=False)
    for run_id in run_ids:
        run_keys = keys.run_keys(run_id)
        # EVAL as a command: a sync cluster pipeline refuses .eval(), routes EVAL by its keys
        pipe.execute_command(  # type: ignore[no-untyped-call]
            "EVAL",
            _DELETE,
            len(run_keys),
            *run_keys,
            "" if before is None else before,
            status or "",
        )
    replies = cast("list[list[Any]]", pipe.execute())
    pipe = r.pipeline(transaction=False)
    for run_id, reply in zip(run_ids, replies, strict=True):
        if int(reply[0]) == 2:
            workflow, idem = _text(reply[1]), _text(reply[2])
            _unindex(pipe, run_id, workflow)
            if idem:
                pipe.execute_command("EVAL", _DEL_IF, 1, keys.idempotency(idem), run_id)  # type: ignore[no-untyped-call]
        elif int(reply[0]) == 0:  # already expired: its index entries go too
            pipe.zrem(keys.runs(keys.partition_of(run_id)), run_id)
    pipe.execute()
    return replies


def delete(run_id: str, client: redis.Redis | None = None) -> None:
    """Remove a finished run now: every key and index entry. ``RunNotFound`` for an
    unknown (or expired) run, ``RunStateError`` for one not finished."""
    reply = _delete_page(client or sync_redis(), [run_id], None, None)[0]
    if int(reply[0]) == 0:
        raise RunNotFound(run_id)
    if int(reply[0]) == 1:
        raise RunStateError(
            f"run {run_id} is {_text(reply[1])}; only finished runs (completed, failed, "
            "cancelled) can be deleted: cancel it first"
        )


Progress = Callable[[int, int], None]
"""Called after each page with (runs looked at, runs deleted) so far."""


def prune(
    older_than: float,
    workflow: str | None = None,
    status: str | None = None,
    *,
    client: redis.Redis | None = None,
    progress: Progress | None = None,
    page: int = defaults.PRUNE_PAGE,
) -> int:
    """Delete the finished runs that ended more than ``older_than`` seconds ago (of one
    ``workflow``, with one ``status``, when given); how many were deleted."""
    if status is not None and status not in TERMINAL:
        raise RunStateError(
            f"status must be one of {sorted(TERMINAL)} (only finished runs are pruned), "
            f"got {status!r}"
        )
    r = client or sync_redis()
    before = time.time() - older_than
    seen = deleted = 0
    for part in range(keys.partitions()):
        index = keys.workflow_runs(workflow, part) if workflow else keys.runs(part)
        kept = 0
        while True:  # created <= before is necessary for ended <= before
            raw = cast("list[bytes]", r.zrangebyscore(index, "-inf", before, start=kept, num=page))
            if not raw:
                break
            replies = _delete_page(r, [_text(i) for i in raw], before, status)
            done = sum(1 for reply in replies if int(reply[0]) == 2)
            gone = [i for i, rep in zip(raw, replies, strict=True) if int(rep[0]) == 0]
            if workflow and gone:  # expired runs of a workflow index: dropped as we pass
                r.zrem(index, *gone)
            seen, deleted = seen + len(raw), deleted + done
            kept += len(raw) - done - len(gone)
            if progress is not None:
                progress(seen, deleted)
    return deleted
