"""The API-side writes: queue a run, resume one, request a cancel. Never executes anything."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import redis

from .. import defaults, keys
from ..config import settings
from ..errors import RunNotFound, RunStateError
from ..events.model import FIELD, make_payload
from ..events.refs import RECORD, value_fields
from ..events.status import TERMINAL, RunStatus
from ..redaction import Redactor
from ..serialization import dumps, encode_value
from ..store import channels, sync_redis
from ..store.scripts import run_script_sync
from . import registered, retention
from .deployments import current_version, register_version
from .routing import run_queue

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

__all__ = [
    "Seed",
    "Submission",
    "cancel",
    "new_run_id",
    "requeue",
    "resolve_version",
    "resume",
    "submit",
    "submit_run",
]


@dataclass(frozen=True)
class Seed:
    """What a rerun starts from (``ops/fork.py``): its source run, the steps it must
    execute, and the copy of the source's journal its steps replay from."""

    source: str
    steps: list[str] | None
    journal: Mapping[bytes, bytes]


class Submission(NamedTuple):
    """A queued run: its id, and the id of its ``run.queued`` event when that is known to
    be the last of its stream as submitted (the script path: a reader of this run may
    follow on from there without first reading its status; None otherwise)."""

    run_id: str
    queued: str | None


def new_run_id(partition: int | None = None) -> str:
    """An unguessable run id (24 hex digits, at least 84 random bits) in ``partition``
    (None: one at random): its first 4 digits modulo the partition count name it
    (``keys.partition_of``)."""
    count = keys.partitions()
    chosen = secrets.randbelow(count) if partition is None else partition
    if not 0 <= chosen < count:
        raise ValueError(f"partition must be from 0 to {count - 1}, got {partition}")
    head = secrets.randbelow(0x10000 // count) * count + chosen
    return f"{head:04x}{secrets.token_hex(10)}"


def resolve_version(client: redis.Redis | None = None) -> str:
    """``AIFLOW_VERSION``, else the active deployment (as this process read it at most
    ``DEPLOY_CACHE_TTL`` s ago), else the default version."""
    configured = settings().version
    if configured:
        return configured
    return current_version(client) or defaults.VERSION


def submit(
    workflow: str,
    inputs: dict[str, Any],
    *,
    version: str | None = None,
    idempotency_key: str | None = None,
    secret_args: Iterable[str] = (),
    code: str | None = None,
    retention: float | None = None,
    client: redis.Redis | None = None,
    seed: Seed | None = None,
) -> str:
    """``submit_run``'s run id (see there)."""
    return submit_run(
        workflow,
        inputs,
        version=version,
        idempotency_key=idempotency_key,
        secret_args=secret_args,
        code=code,
        retention=retention,
        client=client,
        seed=seed,
    ).run_id


def submit_run(
    workflow: str,
    inputs: dict[str, Any],
    *,
    version: str | None = None,
    idempotency_key: str | None = None,
    secret_args: Iterable[str] = (),
    code: str | None = None,
    retention: float | None = None,
    client: redis.Redis | None = None,
    seed: Seed | None = None,
) -> Submission:
    """Record a run of ``workflow`` and put it on its queue (``ops/routing.py``), atomically; return
    its run id (``aiflow_nb.access`` wraps it in a ``RunHandle``).

    ``code`` is the digest of a registered code bundle (``ops/code.py``) that the worker
    loads to get the workflow; None means the worker's own (imported) workflow. Inputs
    JSON cannot hold faithfully raise ``SerializationError``, inputs over
    ``AIFLOW_MAX_VALUE_BYTES`` ``ValueTooLarge``, before anything is written.
    ``retention``: seconds the run is kept once it ends (None: ``AIFLOW_RETENTION``).
    ``seed``: the run is a rerun (``forked_from`` in its record and ``run.queued``), its
    source's journal copied into its seed hash in the same transaction.
    """
    limit = settings().max_value_bytes
    doc = encode_value(inputs, f"inputs of workflow {workflow!r}", limit)
    r = client or sync_redis()
    # a run submitted with an idempotency key is in the key's partition (one slot)
    part = None if idempotency_key is None else keys.idempotency_partition(idempotency_key)
    run_id = new_run_id(part)
    part = keys.partition_of(run_id)
    version = version or resolve_version(r)
    secret = sorted(set(secret_args))
    public = Redactor.from_environment().for_inputs(secret, inputs).apply(inputs)
    now = time.time()
    record: dict[FieldT, EncodableT] = {
        "run_id": run_id,
        "workflow": workflow,
        "version": version,
        "status": RunStatus.QUEUED,
        "inputs": doc,
        "created_at": now,
        "attempt": 0,
        "restarts": 0,
    }
    if code:
        record["code"] = code
    if retention is not None:
        record["retention"] = retention
    if idempotency_key is not None:
        record["idem"] = idempotency_key  # delete() drops the key with the run
    if secret:  # so the worker and the monitor mask them without the workflow
        record["secret_args"] = dumps(secret)
    forked: dict[str, Any] = {}
    if seed is not None:
        record["forked_from"] = forked["forked_from"] = seed.source
        if seed.steps is not None:
            record["rerun_steps"] = dumps(seed.steps)
    payload = make_payload(
        "run.queued",
        run_id,
        name=workflow,
        data={
            "workflow": workflow,
            "version": version,
            **forked,
            # large inputs stay in the record only (events/refs.py); previewed masked
            **value_fields(
                "inputs",
                public,
                doc if public == inputs else None,
                at=RECORD,
                field="inputs",
                mask=secret,
            ),
        },
    )
    queue = run_queue(version, workflow, code, partition=part)
    register_version(version, r)  # metadata: once per process, never in the transaction
    queues = keys.queues(version, part)
    new_queue = not registered.known(queues, queue)

    def write(pipe: Any) -> None:  # one slot: the run's partition
        pipe.hset(keys.run(run_id), mapping=record)
        if seed is not None and seed.journal:
            pipe.hset(keys.run_seed(run_id), mapping=dict(seed.journal))
        pipe.zadd(keys.runs(part), {run_id: now})
        pipe.zadd(keys.workflow_runs(workflow, part), {run_id: now})
        pipe.xadd(keys.run_events(run_id), {FIELD: payload})
        pipe.xadd(queue, {"run_id": run_id})
        if new_queue:  # the set's members are never removed: once per process
            pipe.sadd(queues, queue)

    if idempotency_key is None and not (seed is not None and seed.journal):
        pairs = [v for field_value in record.items() for v in field_value]
        queued = run_script_sync(
            r,
            _SUBMIT,
            5 + new_queue,
            keys.run(run_id),
            keys.runs(part),
            keys.workflow_runs(workflow, part),
            keys.run_events(run_id),
            queue,
            *([queues] if new_queue else []),
            run_id,
            now,
            payload,
            *pairs,
        )
        if new_queue:
            registered.remember(queues, queue)
        return Submission(run_id, queued.decode() if isinstance(queued, bytes) else str(queued))
    if idempotency_key is None:  # a rerun with its seed: a transaction
        pipe = r.pipeline(transaction=True)
        write(pipe)
        pipe.execute()
        submitted = run_id
    else:
        submitted = _submit_once(r, idempotency_key, run_id, write)
    if new_queue:
        registered.remember(queues, queue)
    return Submission(submitted, None)


_SUBMIT = """-- aiflow: a run's submit (ops/submit.py), one slot: the run's partition
-- KEYS: record, the runs index, the workflow's runs index, events, queue[, its version's
-- queue set, when this process has not added the queue yet]
-- ARGV: run id, now (epoch s), the run.queued payload, then the record's field value pairs
-- Returns the run.queued event's id.
redis.call('HSET', KEYS[1], unpack(ARGV, 4, #ARGV))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local queued = redis.call('XADD', KEYS[4], '*', '@FIELD@', ARGV[3])
redis.call('XADD', KEYS[5], '*', 'run_id', ARGV[1])
if KEYS[6] then redis.call('SADD', KEYS[6], KEYS[5]) end
return queued
""".replace("@FIELD@", FIELD.decode())
"""The submit without an idempotency key or a seed: what ``write`` queues on a
transaction, as one script (one command to send and one reply to read, not seven)."""


def _submit_once(r: redis.Redis, key: str, run_id: str, write: Callable[[Any], None]) -> str:
    """Write the run (``write``) and claim ``key`` for it in one transaction, unless the key
    names a run that still exists: that run's id. A key whose run expired or was deleted is
    taken over. Watched, so two submits with one key never both create a run (the key and
    the record it names appear together)."""
    idem = keys.idempotency(key)
    with r.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(idem)  # type: ignore[no-untyped-call]
                existing = cast("bytes | None", pipe.get(idem))
                if existing is not None and pipe.exists(keys.run(existing.decode())):
                    return existing.decode()
                pipe.multi()
                pipe.set(idem, run_id, ex=24 * 3600)
                write(pipe)
                pipe.execute()
                return run_id
            except redis.WatchError:
                continue


def _status(r: Any, run_id: str) -> dict[str, str]:
    fields = ("status", "version", "workflow", "code", "retention", "secrets_dropped")
    raw = cast("list[bytes | None]", r.hmget(keys.run(run_id), *fields))
    if raw[0] is None:
        raise RunNotFound(run_id)
    return {name: (value or b"").decode() for name, value in zip(fields, raw, strict=True)}


def resume(run_id: str, client: redis.Redis | None = None) -> str:
    """Queue an interrupted or failed run again (journaled steps will replay, not re-run);
    return its run id."""
    r = client or sync_redis()
    with r.pipeline(transaction=True) as pipe:
        while True:  # watched: a run deleted or expired meanwhile is not recreated
            try:
                pipe.watch(keys.run(run_id), keys.run_lease(run_id))  # type: ignore[no-untyped-call]
                state = _status(pipe, run_id)
                _resumable(pipe, run_id, state)
                pipe.multi()
                requeue(pipe, run_id, state["version"], state["workflow"], state["code"])
                pipe.execute()
                return run_id
            except redis.WatchError:
                continue


def _resumable(r: Any, run_id: str, state: dict[str, str]) -> None:
    """``RunStateError`` unless the run (``state``, its record's fields) may resume now."""
    if state["status"] in (RunStatus.COMPLETED, RunStatus.CANCELLED):
        raise RunStateError(f"run {run_id} is {state['status']}; only unfinished runs resume")
    if state["status"] == RunStatus.WAITING:
        raise RunStateError(
            f"run {run_id} is waiting (parked at a wait): answering it (respond, send) or "
            "its timer resumes it"
        )
    holder = cast("bytes | None", r.get(keys.run_lease(run_id)))
    if holder is not None:
        raise RunStateError(
            f"run {run_id} is still held by worker {holder.decode()}; it resumes by itself "
            "if that worker dies (its lease expires)"
        )
    if state["secrets_dropped"]:
        raise RunStateError(
            f"run {run_id} ended with secret inputs, which are dropped when a run ends "
            "(they are never kept past it); start a new run with them instead"
        )


def requeue(pipe: Any, run_id: str, version: str, workflow: str, code: str | None) -> None:
    """Queue the commands that put an existing run back on the queue of its workflow (or of
    registered code) in its version (``pipe``: a sync or async transaction pipeline; the
    worker resumes it from its journal)."""
    part = keys.partition_of(run_id)
    queue = run_queue(version, workflow, code, resumed=True, partition=part)
    pipe.hset(keys.run(run_id), "status", RunStatus.QUEUED)
    pipe.hdel(keys.run(run_id), "fence")  # no earlier attempt may take its lease back
    retention.persist(pipe, run_id, workflow)  # a failed run resumed no longer expires
    pipe.xadd(queue, {"run_id": run_id, "resume": "1"})
    pipe.sadd(keys.queues(version, part), queue)


_FLAG_IF_KEPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancel_requested', 1)
return 1
"""


def _cancel_now(pipe: Any, run_id: str, state: dict[str, str]) -> None:
    """Queue the writes that end a queued or waiting run ``cancelled``."""
    pipe.hset(
        keys.run(run_id),
        mapping={"status": RunStatus.CANCELLED, "ended_at": time.time(), "cancel_requested": 1},
    )
    pipe.hdel(keys.run(run_id), "waits")
    part = keys.partition_of(run_id)
    pipe.srem(keys.running(part), run_id)
    pipe.zrem(keys.timers(part), run_id)
    pipe.xadd(keys.run_events(run_id), {FIELD: make_payload("run.cancelled", run_id)})
    retention.expire(pipe, run_id, state["workflow"], retention.retention_of(state["retention"]))


def cancel(run_id: str, client: redis.Redis | None = None) -> str:
    """Cancel a run: at once when queued or waiting, through its worker when running.
    Returns the status."""
    r = client or sync_redis()
    with r.pipeline(transaction=True) as pipe:
        while True:  # watched: a worker taking the run (or an answer re-queueing it, or
            try:  # its end) between the read and the write makes the cancel read again
                pipe.watch(keys.run(run_id), keys.run_lease(run_id))  # type: ignore[no-untyped-call]
                state = _status(pipe, run_id)
                if state["status"] in TERMINAL:
                    return state["status"]
                if state["status"] not in (RunStatus.QUEUED, RunStatus.WAITING):
                    break  # running: through its worker
                pipe.multi()  # queued or waiting: no worker holds it, it ends now
                _cancel_now(pipe, run_id, state)
                pipe.execute()
                return RunStatus.CANCELLED
            except redis.WatchError:
                continue
    if not r.eval(_FLAG_IF_KEPT, 1, keys.run(run_id)):  # never a husk of an expired run
        raise RunNotFound(run_id)
    channels.publish(r, keys.cancel_channel(), run_id)
    return RunStatus.CANCELLING
