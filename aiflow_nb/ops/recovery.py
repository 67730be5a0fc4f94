"""Putting an interrupted run back on its queue: handed back by a draining worker, or
recovered by the monitor after its worker died (or failed for good with reason
``crashed`` once it has been restarted ``max_restarts`` times).

Every change is one optimistic transaction (WATCH on the run record and its lease), so a
run that finishes or is taken by a worker meanwhile is never re-queued by mistake; a
re-queue clears the record's ``fence``, so no earlier attempt takes the run back
(``events/fence.py``). ``fail_run`` is one Lua script: never over a terminal status, and
only while the failing attempt's token is current.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..config import settings
from ..errors import error_document, event_error
from ..events.fence import CURRENT_LUA, holder_of
from ..events.model import FIELD, make_payload
from ..events.status import TERMINAL, RunStatus
from ..redaction import Redactor, masked_inputs
from ..serialization import dumps, loads
from . import retention
from .submit import requeue

__all__ = ["QueueEntry", "Recovery", "fail_run", "hand_back", "recover"]

_ROUTE = ("version", "workflow", "code")
"""The record fields that choose a run's queue (``ops/routing.run_queue``)."""

_SECRETS = ("inputs", "secret_args")
"""The record fields a run ending here masks (its secrets are dropped when it ends)."""

QueueEntry = tuple[str, str]
"""(queue stream key, entry id) of the request that brought the run to a worker."""


@dataclass
class Recovery:
    """What ``recover`` did: ``requeued``, ``crashed`` (failed for good), ``held`` (a
    worker holds its lease: nothing to do), ``ended``, ``parked`` (waiting: nothing to
    do) or ``missing``."""

    run_id: str
    outcome: str
    restarts: int = 0
    notification: dict[str, Any] = field(default_factory=dict)


def _text(raw: bytes | str | None, default: str = "") -> str:
    if raw is None:
        return default
    return raw.decode() if isinstance(raw, bytes) else raw


def _secrets_of(inputs: str, secret_args: str) -> tuple[Redactor, bytes | None]:
    """The run's redactor (from its record's inputs and ``secret_args``) and its inputs
    with their secrets masked (None when they hold none): a run ending here drops them,
    as the executor's terminal write does."""
    value = loads(inputs) if inputs else {}
    names = loads(secret_args) if secret_args else ()
    public = masked_inputs(value, names)
    red = Redactor.from_environment().for_inputs(names, value)
    return red, None if public is None else dumps(public)


def _log_event(run_id: str, level: str, message: str, **data: Any) -> dict[bytes, bytes]:
    return {FIELD: make_payload("log", run_id, data={"level": level, "message": message, **data})}


def _requeue(pipe: Any, run_id: str, route: list[str], note: dict[bytes, bytes]) -> None:
    """``route``: the run's version, workflow and code bundle (its queue, ops/routing.py)."""
    version, workflow, code = route
    pipe.xadd(keys.run_events(run_id), note)
    requeue(pipe, run_id, version, workflow, code or None)


def _ack(pipe: Any, entry: QueueEntry | None) -> None:
    if entry is not None:
        pipe.xack(entry[0], keys.queue_group, entry[1])
        pipe.xdel(entry[0], entry[1])


async def hand_back(client: aredis.Redis, run_id: str, token: str, entry: QueueEntry) -> str:
    """Release a run this attempt (fencing ``token``) holds and queue it for another worker
    (drain timeout). Returns ``requeued``, ``ended`` when the run finished meanwhile, or
    ``lost`` when another attempt took it over or it was recovered (only the queue entry
    is acked)."""
    run_key, lease_key = keys.run(run_id), keys.run_lease(run_id)
    worker_id = holder_of(token)
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(run_key, lease_key)
                status, fence, *route = await pipe.hmget(run_key, "status", "fence", *_ROUTE)
                holder = await pipe.get(lease_key)
                # expired and untaken counts as held while no recovery came between
                held = _text(holder) == token or (
                    holder is None and _text(fence).startswith(f"{token} ")
                )
                pipe.multi()  # type: ignore[no-untyped-call]
                _ack(pipe, entry)
                if held:
                    pipe.delete(lease_key)
                outcome = "ended" if _text(status) in TERMINAL else "requeued" if held else "lost"
                if outcome == "requeued":
                    note = _log_event(
                        run_id,
                        "warning",
                        f"worker {worker_id} is shutting "
                        "down: run handed back to resume on another worker",
                        worker=worker_id,
                        handback=True,
                    )
                    _requeue(pipe, run_id, [_text(f) for f in route], note)
                await pipe.execute()
                return outcome
            except redis.WatchError:
                continue


async def recover(
    client: aredis.Redis, run_id: str, *, max_restarts: int, entry: QueueEntry | None = None
) -> Recovery:
    """Re-queue a run whose worker died (its lease is gone), counting a restart if it had
    started; past ``max_restarts`` restarts end it ``failed`` with reason ``crashed``.
    ``entry`` is the dead worker's pending queue entry for it, acknowledged here."""
    run_key, lease_key = keys.run(run_id), keys.run_lease(run_id)
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(run_key, lease_key)
                if await pipe.exists(lease_key):
                    return Recovery(run_id, "held")
                fields = await pipe.hmget(
                    run_key, "status", "restarts", "worker", "retention", *_ROUTE, *_SECRETS
                )
                result = _plan(pipe, run_id, [_text(f) for f in fields], max_restarts, entry)
                await pipe.execute()
                return result
            except redis.WatchError:
                continue


def _plan(
    pipe: Any, run_id: str, fields: list[str], max_restarts: int, entry: QueueEntry | None
) -> Recovery:
    status, restarts_raw, worker, kept, *rest = fields
    route, secrets = rest[: len(_ROUTE)], rest[len(_ROUTE) :]
    workflow = route[1]
    pipe.multi()
    _ack(pipe, entry)
    if not status:
        return Recovery(run_id, "missing")
    if status in TERMINAL:
        return Recovery(run_id, "ended")
    if status == RunStatus.WAITING:  # parked: its answer or timer re-queues it
        return Recovery(run_id, "parked")
    restarts = int(restarts_raw or 0) + (1 if status == RunStatus.RUNNING else 0)
    if restarts > max_restarts:
        public = _secrets_of(*secrets)[1]
        if public is not None:
            pipe.hset(keys.run(run_id), mapping={"inputs": public, "secrets_dropped": 1})
        crashed = _crash(pipe, run_id, workflow, worker, restarts - 1, max_restarts)
        retention.expire(pipe, run_id, workflow, retention.retention_of(kept))
        return crashed
    pipe.hset(keys.run(run_id), "restarts", restarts)
    message = (
        f"worker {worker or '?'} stopped heartbeating: run re-queued "
        f"(restart {restarts} of at most {max_restarts})"
    )
    _requeue(
        pipe,
        run_id,
        route,
        _log_event(run_id, "warning", message, worker=worker, restarts=restarts, recovered=True),
    )
    return Recovery(run_id, "requeued", restarts)


_FAIL = (
    CURRENT_LUA
    + """
-- KEYS: lease, record, events, running set, expiry set, then the run's other keys;
-- ARGV: token ('' = no attempt), ended_at, error document, run.failed payload, run id,
-- retention seconds when the record has none, inputs without their secrets ('' = same),
-- the longest retention (defaults.RETENTION_MAX)
local status = redis.call('HGET', KEYS[2], 'status')
if not status or is_ended(status) then return 0 end
if ARGV[1] ~= '' then
  if current(KEYS[1], KEYS[2], ARGV[1], 1000, applied(KEYS[2], ARGV[1])) ~= 1 then return 0 end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[2], 'status', 'failed', 'ended_at', ARGV[2], 'error', ARGV[3])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'inputs', ARGV[7], 'secrets_dropped', 1) end
redis.call('SREM', KEYS[4], ARGV[5])
redis.call('XADD', KEYS[3], '*', '@FIELD@', ARGV[4])
local keep = tonumber(redis.call('HGET', KEYS[2], 'retention') or ARGV[6])
keep = math.min(keep, tonumber(ARGV[8]))
local ms = math.max(1, math.floor(keep * 1000))
for i, key in ipairs(KEYS) do
  if i <= 3 or i > 5 then redis.call('PEXPIRE', key, ms) end
end
local workflow = redis.call('HGET', KEYS[2], 'workflow') or ''
redis.call('ZADD', KEYS[5], tonumber(ARGV[2]) + keep, ARGV[5] .. ' ' .. workflow)
return 1
""".replace("@FIELD@", FIELD.decode())
)


async def fail_run(
    client: aredis.Redis, run_id: str, exc: BaseException, token: str | None = None
) -> bool:
    """End a run ``failed`` with ``exc`` as its error (the executor itself broke), so it is
    neither left ``running`` nor recovered again and again. Atomic and conditional: never
    over a terminal status, and with ``token`` only while that attempt is current (its
    lease is released too). True when the run was ended here."""
    raw = await client.hmget(keys.run(run_id), *_SECRETS)  # never change during a run
    redactor, public = _secrets_of(*(_text(f) for f in raw))
    error = error_document(exc, redactor.apply)  # masked before anything is cut
    payload = make_payload("run.failed", run_id, data={"error": event_error(error)})
    fixed = [keys.run_lease(run_id), keys.run(run_id), keys.run_events(run_id)]
    others = [k for k in keys.run_keys(run_id) if k not in fixed]
    done = await client.eval(
        _FAIL,
        5 + len(others),
        *fixed,
        keys.running(),
        keys.expiry(),
        *others,
        token or "",
        time.time(),
        dumps(error),
        payload,
        run_id,
        settings().retention,
        public or "",
        defaults.RETENTION_MAX,
    )
    return bool(done)


def _crash(
    pipe: Any, run_id: str, workflow: str, worker: str, restarts: int, max_restarts: int
) -> Recovery:
    message = (
        f"the run's worker died {restarts + 1} times (last: {worker or '?'}); "
        f"max_restarts={max_restarts} reached"
    )
    error = {"type": "WorkerCrashed", "message": message, "cause": None, "traceback": ""}
    notification = {
        "run_id": run_id,
        "workflow": workflow,
        "status": RunStatus.FAILED,
        "reason": "crashed",
        "restarts": restarts,
        "message": message,
        "ts": time.time(),
    }
    pipe.hset(
        keys.run(run_id),
        mapping={
            "status": RunStatus.FAILED,
            "reason": "crashed",
            "ended_at": time.time(),
            "error": dumps(error),
        },
    )
    pipe.srem(keys.running(), run_id)
    events = keys.run_events(run_id)
    pipe.xadd(
        events, {FIELD: make_payload("notification", run_id, name=workflow, data=notification)}
    )
    pipe.xadd(
        events,
        {
            FIELD: make_payload(
                "run.failed",
                run_id,
                name=workflow,
                data={"reason": "crashed", "error": error, "restarts": restarts},
            )
        },
    )
    return Recovery(run_id, "crashed", restarts, notification)
