"""Waking parked runs (``runtime/waits.py``): an answer (``respond``), a signal (``send``)
or a wait's due time (``wake_due``, the monitor's timer sweep).

Each is one optimistic transaction (WATCH on the run record): the wait must be open (the
run ``waiting`` on that name) when the transaction applies, so exactly one outcome is
recorded — a second answer, or an answer after the timer fired, finds the wait closed
(``AlreadyAnswered``). The transaction journals the outcome under the wait's journal
field, closes the wait (record ``waits``, the timer index), writes ``input.received`` and
re-queues the run (``submit.requeue``); the next attempt replays up to the wait, which
returns the outcome. All of it is one slot: the run's keys, its queue and its
partition's timer index (``keys.py``).

Example::

    respond(run_id, "approve", True, by="cli")
"""

from __future__ import annotations

import time
from typing import Any, cast

import redis
import redis.asyncio as aredis

from .. import keys
from ..config import settings
from ..errors import AlreadyAnswered, InvalidInputs, RunNotFound, RunStateError, WaitNotFound
from ..events.model import FIELD, make_payload
from ..events.status import RunStatus
from ..redaction import Redactor
from ..runtime.waits import WaitKind, journal_key
from ..serialization import dumps, encode_value, loads
from ..store import sync_redis
from .submit import requeue

__all__ = ["DUE_BATCH", "next_due", "open_waits", "respond", "send", "validate", "wake_due"]

DUE_BATCH = 100
"""Parked runs one timer sweep wakes at most (the rest on the next pass)."""

_FIELDS = ("status", "waits", "version", "workflow", "code")


def validate(schema: dict[str, Any] | None, value: Any, name: str) -> None:
    """Raise ``InvalidInputs`` naming each field where ``value`` breaks ``schema``."""
    if schema is None:
        return
    from jsonschema import validators

    validator = validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    fields = [
        {"field": ".".join(str(p) for p in e.absolute_path) or "value", "message": e.message}
        for e in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    raise InvalidInputs(f"answer to wait {name!r} does not fit its schema: {summary}", fields)


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else raw


def open_waits(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The open waits of a decoded run record (name -> description), ``{}`` unless
    it is ``waiting``."""
    if record.get("status") != RunStatus.WAITING:
        return {}
    waits = record.get("waits") or {}
    return cast("dict[str, dict[str, Any]]", loads(waits) if isinstance(waits, str) else waits)


def _answered(raw: bytes | None) -> bool:
    if raw is None:
        return False
    doc = loads(raw)
    return "r" in doc or bool(doc.get("timeout"))


def _close(
    pipe: Any,
    run_id: str,
    route: list[str],
    wait: dict[str, Any],
    outcome: dict[str, Any],
    event: dict[str, Any],
) -> None:
    """Queue the commands that record ``outcome`` for ``wait`` and re-queue the run."""
    version, workflow, code = route
    pipe.hset(keys.run_journal(run_id), journal_key(wait["name"]), dumps(outcome))
    pipe.hdel(keys.run(run_id), "waits")
    pipe.zrem(keys.timers(keys.partition_of(run_id)), run_id)
    masked = Redactor.from_environment().apply(event)  # the journal keeps the answer itself
    payload = make_payload("input.received", run_id, name=wait["name"], data=masked)
    pipe.xadd(keys.run_events(run_id), {FIELD: payload})
    requeue(pipe, run_id, version, workflow, code or None)


def _answer(r: redis.Redis, run_id: str, name: str, value: Any, kind: WaitKind, by: str) -> None:
    limit = settings().max_value_bytes  # JSON within the limits, or a clear error
    value = loads(encode_value(value, f"answer to wait {name!r}", limit))
    with r.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(keys.run(run_id))  # type: ignore[no-untyped-call]
                raw = cast("list[bytes | None]", pipe.hmget(keys.run(run_id), *_FIELDS))
                status, waits_raw, *route = (_text(f) for f in raw)
                if raw[0] is None:
                    raise RunNotFound(run_id)
                waits = open_waits({"status": status, "waits": waits_raw or "{}"})
                wait = waits.get(name)
                if wait is None:
                    prior = cast(
                        "bytes | None", pipe.hget(keys.run_journal(run_id), journal_key(name))
                    )
                    if _answered(prior):
                        raise AlreadyAnswered(run_id, name)
                    raise WaitNotFound(run_id, name, list(waits))
                if wait["kind"] != kind:
                    how = "respond()" if wait["kind"] == WaitKind.INPUT else "send()"
                    raise RunStateError(
                        f"run {run_id}: wait {name!r} is a {wait['kind']} wait; answer it "
                        f"with {how}"
                    )
                if kind == WaitKind.INPUT:
                    validate(wait.get("schema"), value, name)
                now = time.time()
                pipe.multi()
                outcome = {"r": value, "by": by, "t": now, "s": wait.get("since")}
                event = {"name": name, "kind": str(kind), "by": by, "value": value}
                _close(pipe, run_id, list(route), wait, outcome, event)
                pipe.execute()
                return
            except redis.WatchError:
                continue


def respond(
    run_id: str, name: str, value: Any, *, by: str = "python", client: redis.Redis | None = None
) -> None:
    """Answer the run's open ``wait_for_input(name)`` with ``value`` (validated against the
    wait's schema: ``InvalidInputs`` naming the fields) and put the run back on its queue.
    ``by`` says who answered (recorded in the journal and ``input.received``). Refused
    with ``AlreadyAnswered`` when the wait was answered (or timed out) already, with
    ``WaitNotFound`` when the run waits for no such input."""
    _answer(client or sync_redis(), run_id, name, value, WaitKind.INPUT, by)


def send(
    run_id: str,
    name: str,
    value: Any = None,
    *,
    by: str = "python",
    client: redis.Redis | None = None,
) -> None:
    """Send the signal ``name`` (any JSON ``value``) to a run parked at
    ``wait_for_event(name)``; refused like ``respond`` when it waits for no such event."""
    _answer(client or sync_redis(), run_id, name, value, WaitKind.EVENT, by)


async def wake_due(client: aredis.Redis, now: float | None = None) -> list[str]:
    """Wake the parked runs whose timed wait is due: a ``sleep`` returns, a
    ``wait_for_*`` raises ``InputTimeout``. Returns the run ids woken (all that are due,
    ``DUE_BATCH`` read at a time)."""
    now = time.time() if now is None else now
    woken: list[str] = []
    for part in range(keys.partitions()):
        timers = keys.timers(part)
        while True:
            due = await client.zrangebyscore(timers, "-inf", now, start=0, num=DUE_BATCH)
            for raw in due:
                run_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                if await _wake(client, run_id, now):
                    woken.append(run_id)
            if len(due) < DUE_BATCH:
                break
    return woken


async def next_due(client: aredis.Redis) -> float | None:
    """The due time (epoch s) of the earliest timed wait, or None when none is set."""
    pipe = client.pipeline(transaction=False)
    for part in range(keys.partitions()):  # one read per partition's timer index
        pipe.zrange(keys.timers(part), 0, 0, withscores=True)
    firsts = [float(first[0][1]) for first in await pipe.execute() if first]
    return min(firsts) if firsts else None


async def _wake(client: aredis.Redis, run_id: str, now: float) -> bool:
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.run(run_id))
                raw = await pipe.hmget(keys.run(run_id), *_FIELDS)
                status, waits_raw, *route = (_text(f) for f in raw)
                waits = open_waits({"status": status, "waits": waits_raw or "{}"})
                due = [w for w in waits.values() if (w.get("deadline") or now + 1) <= now]
                pipe.multi()  # type: ignore[no-untyped-call]
                if not due:  # answered, cancelled or gone meanwhile: drop the stale timer
                    if not waits:
                        pipe.zrem(keys.timers(keys.partition_of(run_id)), run_id)
                    await pipe.execute()
                    return False
                wait = due[0]
                sleep = wait["kind"] == WaitKind.SLEEP
                base = {"by": "timer", "t": now, "s": wait.get("since")}
                outcome = {"r": None, **base} if sleep else {"timeout": True, **base}
                event = {"name": wait["name"], "kind": wait["kind"], "by": "timer"}
                if not sleep:
                    event["timeout"] = True
                _close(pipe, run_id, list(route), wait, outcome, event)
                await pipe.execute()
                return True
            except redis.WatchError:
                continue
