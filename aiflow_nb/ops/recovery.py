"""Putting an interrupted run back on its queue: handed back by a draining worker, or
recovered by the monitor after its worker died (or failed for good with reason
``crashed`` once it has been restarted ``max_restarts`` times).

Every change is one Lua script (atomic, no WATCH loop; all its keys are the run's, in
its slot) that checks the run's status and lease and writes in the same step, so a run
that finishes or is taken by a worker meanwhile is never re-queued by mistake; a re-queue
clears the record's ``fence``, so no earlier attempt takes the run back
(``events/fence.py``). The events a script writes are made here, with placeholders
(``_SLOTS``) for what only the script reads (the restart count, the dead worker), which it
fills in. What chooses the queue (the run's version, workflow and code) is written at
submit and never changes, so it is read before the script without a watch (``hand_back``
is given it by the worker, which read it with the run). ``fail_run`` is one script too:
never over a terminal status, and only while the failing attempt's token is current.
Each touches one slot: the run's keys, its queue entry and its partition's indexes
(``keys.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis

from .. import defaults, keys
from ..config import settings
from ..errors import error_document, event_error
from ..events.fence import CURRENT_LUA, holder_of
from ..events.model import FIELD, make_payload
from ..events.status import RunStatus
from ..redaction import Redactor, masked_inputs
from ..serialization import dumps, loads
from ..store.scripts import run_script
from . import retention
from .routing import run_queue

__all__ = ["QueueEntry", "Recovery", "Route", "fail_run", "hand_back", "recover"]

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


def _ack(pipe: Any, entry: QueueEntry | None) -> None:
    if entry is not None:
        pipe.xack(entry[0], keys.queue_group, entry[1])
        pipe.xdel(entry[0], entry[1])


_SLOTS = {"R": "\x01R\x01", "P": "\x01P\x01", "W": "\x01W\x01", "w": "\x01w\x01"}
"""Placeholders in the payloads a script fills in with what it read (orjson writes each as
``"\u0001R\u0001"``): ``R`` the run's restarts after this one, ``P`` one less, ``W`` the
worker's id (``?`` when unknown) inside a message, ``w`` the worker's id as a value."""

_FILL_LUA = """
local FIELD = '@FIELD@'  -- model.FIELD
-- `s` with each placeholder of `slots` ({json form, text}) replaced (plain, no patterns):
-- the quoted form by the text as a JSON value, the bare form (inside a string) by its body
local function fill(s, slots)
  for _, slot in ipairs(slots) do
    for _, pair in ipairs({{slot[1], slot[2]}, {string.sub(slot[1], 2, -2), slot[3]}}) do
      local out, at = {}, 1
      while true do
        local a, b = string.find(s, pair[1], at, true)
        if not a then break end
        out[#out + 1] = string.sub(s, at, a - 1)
        out[#out + 1] = pair[2]
        at = b + 1
      end
      out[#out + 1] = string.sub(s, at)
      s = table.concat(out)
    end
  end
  return s
end
-- put the run back on `queue` (KEYS index `q`, registered in the set at `qs`), its keys
-- (KEYS[first..#KEYS]) persistent again and out of the expiry index (KEYS index `ex`)
local function requeue(q, qs, ex, first, run_id, member)
  redis.call('HSET', KEYS[1], 'status', 'queued')
  redis.call('HDEL', KEYS[1], 'fence')  -- no earlier attempt may take its lease back
  for i = first, #KEYS do redis.call('PERSIST', KEYS[i]) end
  redis.call('ZREM', KEYS[ex], member)
  redis.call('XADD', KEYS[q], '*', 'run_id', run_id, 'resume', '1')
  redis.call('SADD', KEYS[qs], KEYS[q])
end
local function ack(stream, id)
  if id ~= '' then
    redis.call('XACK', stream, '@GROUP@', id)
    redis.call('XDEL', stream, id)
  end
end
""".replace("@FIELD@", FIELD.decode()).replace("@GROUP@", keys.queue_group)

_HAND_BACK = (
    CURRENT_LUA
    + _FILL_LUA
    + """
-- KEYS: record, lease, events, entry's queue, target queue, its version's queue set,
-- expiry index, then the run's keys; ARGV: token, entry id, the note, run id, expiry member
local s = redis.call('HMGET', KEYS[1], 'status', 'fence')
local holder = redis.call('GET', KEYS[2])
local mark = ARGV[1] .. ' '
-- expired and untaken counts as held while no recovery came between
local held = holder == ARGV[1] or (not holder and s[2] and string.sub(s[2], 1, #mark) == mark)
ack(KEYS[4], ARGV[2])
if held then redis.call('DEL', KEYS[2]) end
if not s[1] or is_ended(s[1]) then return 'ended' end
if not held then return 'lost' end
redis.call('XADD', KEYS[3], '*', FIELD, ARGV[3])
requeue(5, 6, 7, 8, ARGV[4], ARGV[5])
return 'requeued'
"""
)

_RECOVER = (
    CURRENT_LUA
    + _FILL_LUA
    + """
-- KEYS: record, lease, events, entry's queue, target queue, its version's queue set,
-- expiry index, running set, then the run's keys.
-- ARGV: [1] entry id, [2] max restarts, [3] run id, [4] expiry member, [5] the re-queue
-- note, [6] inputs without their secrets ('' = none to drop), [7] the crash's error
-- document, [8] its notification event, [9] its run.failed event, [10] now (epoch s),
-- [11] retention when the record has none, [12] the longest retention, then the
-- placeholders' JSON forms: [13] R, [14] P, [15] W, [16] w
if redis.call('EXISTS', KEYS[2]) == 1 then return {'held'} end
local f = redis.call('HMGET', KEYS[1], 'status', 'restarts', 'worker', 'retention')
local status = f[1]
ack(KEYS[4], ARGV[1])
if not status then return {'missing'} end
if is_ended(status) then return {'ended'} end
if status == 'waiting' then return {'parked'} end  -- its answer or timer re-queues it
local restarts = tonumber(f[2] or '0') + (status == 'running' and 1 or 0)
local worker = f[3] or ''
local shown = worker == '' and '?' or worker
local text = function(v) local e = cjson.encode(v) return string.sub(e, 2, -2) end
local slots = {
  {ARGV[13], tostring(restarts), tostring(restarts)},
  {ARGV[14], tostring(restarts - 1), tostring(restarts - 1)},
  {ARGV[15], cjson.encode(shown), text(shown)},
  {ARGV[16], cjson.encode(worker), text(worker)},
}
if restarts <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'restarts', restarts)
  redis.call('XADD', KEYS[3], '*', FIELD, fill(ARGV[5], slots))
  requeue(5, 6, 7, 9, ARGV[3], ARGV[4])
  return {'requeued', restarts}
end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'inputs', ARGV[6], 'secrets_dropped', 1) end
redis.call('HSET', KEYS[1], 'status', 'failed', 'reason', 'crashed', 'ended_at', ARGV[10],
  'error', fill(ARGV[7], slots))
redis.call('SREM', KEYS[8], ARGV[3])
redis.call('XADD', KEYS[3], '*', FIELD, fill(ARGV[8], slots))
redis.call('XADD', KEYS[3], '*', FIELD, fill(ARGV[9], slots))
local keep = math.min(tonumber(f[4] or ARGV[11]), tonumber(ARGV[12]))
local ms = math.max(1, math.floor(keep * 1000))
for i = 9, #KEYS do redis.call('PEXPIRE', KEYS[i], ms) end
redis.call('ZADD', KEYS[7], tonumber(ARGV[10]) + keep, ARGV[4])
return {'crashed', restarts - 1, shown}
"""
)

Route = tuple[str, str, str]
"""A run's version, workflow and code bundle ('' for none): its queue (ops/routing.py)."""


async def _route(client: aredis.Redis, run_id: str, *more: str) -> list[str]:
    """The run's route fields (and ``more``): written at submit, never changed while the
    run is unfinished, so read without a watch (the script re-checks the status)."""
    raw = await client.hmget(keys.run(run_id), *_ROUTE, *more)
    return [_text(f) for f in raw]


def _requeue_keys(run_id: str, route: Route) -> list[str]:
    """The target queue, its version's queue set and the expiry index (a re-queue's)."""
    version, workflow, code = route
    part = keys.partition_of(run_id)
    return [
        run_queue(version, workflow, code or None, resumed=True, partition=part),
        keys.queues(version, part),
        keys.expiry(part),
    ]


async def hand_back(
    client: aredis.Redis,
    run_id: str,
    token: str,
    entry: QueueEntry,
    route: Route | None = None,
) -> str:
    """Release a run this attempt (fencing ``token``) holds and queue it for another worker
    (drain timeout). Returns ``requeued``, ``ended`` when the run finished meanwhile, or
    ``lost`` when another attempt took it over or it was recovered (only the queue entry
    is acked). One script, atomic; ``route``: the run's (its record's version, workflow
    and code, which the attempt read), else read first."""
    worker_id = holder_of(token)
    if route is None:
        version, workflow, code = await _route(client, run_id)
        route = (version, workflow, code)
    note = _log_event(
        run_id,
        "warning",
        f"worker {worker_id} is shutting down: run handed back to resume on another worker",
        worker=worker_id,
        handback=True,
    )
    reply = await run_script(
        client,
        _HAND_BACK,
        7 + len(keys.run_keys(run_id)),
        keys.run(run_id),
        keys.run_lease(run_id),
        keys.run_events(run_id),
        entry[0],
        *_requeue_keys(run_id, route),
        *keys.run_keys(run_id),
        token,
        entry[1],
        note[FIELD],
        run_id,
        retention.member(run_id, route[1]),
    )
    return _text(reply)


async def recover(
    client: aredis.Redis, run_id: str, *, max_restarts: int, entry: QueueEntry | None = None
) -> Recovery:
    """Re-queue a run whose worker died (its lease is gone), counting a restart if it had
    started; past ``max_restarts`` restarts end it ``failed`` with reason ``crashed``.
    ``entry`` is the dead worker's pending queue entry for it, acknowledged here. One
    script, atomic, after one read of the fields that never change while the run is
    unfinished (its route and inputs)."""
    version, workflow, code, inputs, secret_args = await _route(client, run_id, *_SECRETS)
    if not (version or workflow):  # no record: nothing to re-queue (ids are never reused)
        if await client.exists(keys.run_lease(run_id)):
            return Recovery(run_id, "held")
        if entry is not None:
            pipe = client.pipeline(transaction=False)
            _ack(pipe, entry)
            await pipe.execute()
        return Recovery(run_id, "missing")
    now = time.time()
    message = (
        f"worker {_SLOTS['W']} stopped heartbeating: run re-queued "
        f"(restart {_SLOTS['R']} of at most {max_restarts})"
    )
    note = _log_event(
        run_id, "warning", message, worker=_SLOTS["w"], restarts=_SLOTS["R"], recovered=True
    )
    error, notification, failed = _crash_documents(run_id, workflow, max_restarts, now)
    slots = [dumps(_SLOTS[name]) for name in ("R", "P", "W", "w")]
    run_keys = keys.run_keys(run_id)
    reply = await run_script(
        client,
        _RECOVER,
        8 + len(run_keys),
        keys.run(run_id),
        keys.run_lease(run_id),
        keys.run_events(run_id),
        entry[0] if entry is not None else keys.run_events(run_id),
        *_requeue_keys(run_id, (version, workflow, code)),
        keys.running(keys.partition_of(run_id)),
        *run_keys,
        entry[1] if entry is not None else "",
        max_restarts,
        run_id,
        retention.member(run_id, workflow),
        note[FIELD],
        _secrets_of(inputs, secret_args)[1] or "",
        dumps(error),
        make_payload("notification", run_id, name=workflow, data=notification, ts=now),
        make_payload("run.failed", run_id, name=workflow, data=_failed_data(error), ts=now),
        now,
        settings().retention,
        defaults.RETENTION_MAX,
        *slots,
    )
    outcome = _text(reply[0])
    restarts = int(reply[1]) if len(reply) > 1 else 0
    if outcome != "crashed":
        return Recovery(run_id, outcome, restarts)
    message = _crash_message(restarts + 1, _text(reply[2]), max_restarts)
    return Recovery(
        run_id, outcome, restarts, {**notification, "restarts": restarts, "message": message}
    )


def _crash_message(died: int | str, worker: str, max_restarts: int) -> str:
    """Why a run crashed for good: its worker ``worker`` died the ``died``-th time."""
    return (
        f"the run's worker died {died} times (last: {worker}); max_restarts={max_restarts} reached"
    )


def _failed_data(error: dict[str, Any]) -> dict[str, Any]:
    return {"reason": "crashed", "error": error, "restarts": _SLOTS["P"]}


def _crash_documents(
    run_id: str, workflow: str, max_restarts: int, now: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The crash's error document, notification and run.failed data, with placeholders
    for what the script reads (restarts, worker)."""
    message = _crash_message(_SLOTS["R"], _SLOTS["W"], max_restarts)
    error = {"type": "WorkerCrashed", "message": message, "cause": None, "traceback": ""}
    notification = {
        "run_id": run_id,
        "workflow": workflow,
        "status": RunStatus.FAILED,
        "reason": "crashed",
        "restarts": _SLOTS["P"],
        "message": message,
        "ts": now,
    }
    return error, notification, _failed_data(error)


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
        keys.running(keys.partition_of(run_id)),
        keys.expiry(keys.partition_of(run_id)),
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
