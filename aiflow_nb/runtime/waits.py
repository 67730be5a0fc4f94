"""Waits inside a run: ``wait_for_input``, ``wait_for_event`` and ``sleep``.

A wait reached for the first time parks the run: it raises ``Parked`` (a BaseException,
so no ``except Exception`` swallows it), which unwinds the attempt; the executor then
writes status ``waiting``, a ``run.waiting`` event and the open wait, and releases the
run's lease and its worker's slot. Nothing of the run stays in any process.

An answer (``ops/answer.py``), a signal or the wait's timer journals the outcome under
``journal_key(name)`` and puts the run back on its queue; the next attempt replays its
journal up to the wait, which now finds the outcome there and returns it (or raises
``InputTimeout``). The steps before the wait replay, they do not run again.

Example::

    @workflow
    def publish(topic: str) -> str:
        outline = draft(topic)
        ok = aiflow_nb.wait_for_input("approve", bool, prompt=f"Publish?\\n{outline}")
        return post(outline) if ok else "dropped"
"""

from __future__ import annotations

import datetime as dt
import re
import time
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import InputTimeout, InvalidInputs, Parked, RunStateError
from ..serialization import dumps, loads
from .context import RunContext, current_frame, current_run

__all__ = [
    "JOURNAL_PREFIX",
    "NAME_PATTERN",
    "WaitKind",
    "journal_key",
    "json_schema",
    "sleep",
    "wait_for_event",
    "wait_for_input",
]

JOURNAL_PREFIX = "@wait/"
"""Journal fields of waits start with this (component step keys never do)."""

NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
"""What a wait's name may be (it appears in URLs: ``POST /runs/{id}/input/{name}``)."""

_NAME = re.compile(NAME_PATTERN)


class WaitKind(StrEnum):
    """What a parked run waits for, and so what wakes it."""

    INPUT = "input"
    """An answer (``respond``), validated against the wait's schema."""
    EVENT = "event"
    """A signal (``send``), any JSON value."""
    SLEEP = "sleep"
    """Its due time (the monitor's timer index)."""


def journal_key(name: str) -> str:
    """The journal field holding a wait's state: open (``d``: deadline, ``s``: since),
    answered (``r``: the value, ``by``: who) or timed out (``timeout``)."""
    return f"{JOURNAL_PREFIX}{name}"


def json_schema(schema: Any) -> dict[str, Any] | None:
    """The JSON Schema of ``schema``: None (any JSON), a JSON Schema dict (checked), or a
    Python type / pydantic model (``TypeAdapter(schema).json_schema()``)."""
    if schema is None:
        return None
    if isinstance(schema, dict):
        from jsonschema import validators
        from jsonschema.exceptions import SchemaError

        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise InvalidInputs(f"not a valid JSON Schema: {exc.message}") from None
        return schema
    try:
        return TypeAdapter(schema).json_schema()
    except Exception as exc:  # pydantic raises several kinds for types it cannot describe
        raise InvalidInputs(f"cannot make a JSON Schema of {schema!r}: {exc}") from None


def _convert(schema: Any, value: Any) -> Any:
    """The answer as the schema's Python type (a pydantic model instance, say)."""
    if schema is None or isinstance(schema, dict):
        return value
    try:
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as exc:  # validated when answered: only a changed schema gets here
        raise InvalidInputs(f"the recorded answer no longer fits {schema!r}: {exc}") from None


def _seconds(timeout: float | dt.timedelta | None) -> float | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else float(timeout)
    if not seconds >= 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
    return seconds


def _run(what: str) -> RunContext:
    ctx = current_run()
    if ctx is None:
        raise RunStateError(f"{what} works only inside a run (a workflow or its components)")
    return ctx


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"a wait's name must match {NAME_PATTERN} (letters, digits, _ . : -), got {name!r}"
        )


def _reach(
    ctx: RunContext,
    name: str,
    kind: WaitKind,
    seconds: float | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The wait's outcome from the journal (``r`` or ``timeout``); raises ``Parked`` while
    it has none. An open wait reached again keeps its first deadline; past it, it times
    out here (journaled, so a later replay sees the same)."""
    key = journal_key(name)
    raw = ctx.journal.get(key)
    doc: dict[str, Any] = loads(raw) if raw is not None else {}
    if "r" in doc or doc.get("timeout"):
        return doc
    now = time.time()
    since = doc.get("s", now)
    deadline = doc.get("d", None if seconds is None else now + seconds)
    if deadline is not None and deadline <= now:
        outcome = (
            {"r": None, "by": "timer", "t": now, "s": since}
            if kind == WaitKind.SLEEP
            else {"timeout": True, "by": "timer", "t": now, "s": since}
        )
        ctx.writer.journal(key, dumps(outcome))
        ctx.journal[key] = dumps(outcome)
        return outcome
    wait = {"name": name, "kind": str(kind), "since": since, "deadline": deadline, **extra}
    if seconds is not None:
        wait["timeout"] = seconds
    raise Parked(wait)


def wait_for_input(
    name: str,
    schema: Any = None,
    *,
    prompt: str | None = None,
    timeout: float | dt.timedelta | None = None,
) -> Any:
    """Ask for an answer named ``name`` and return it, validated against ``schema`` (a
    Python type, a pydantic model, or a JSON Schema dict; None = any JSON).

    The first time, the run parks (status ``waiting``; no worker holds it) until someone
    answers (``handle.respond``, ``aiflow_nb.respond``, ``POST /runs/{id}/input/{name}``,
    ``aiflow respond``); then it resumes from its journal and this call returns the
    answer. After ``timeout`` (seconds or a ``timedelta``) without an answer it raises
    ``InputTimeout`` instead. Call it without ``await`` in sync and async code alike: it
    never blocks. A name is answered once per run."""
    ctx = _run("wait_for_input")
    _check_name(name)
    described = json_schema(schema)
    extra = {"prompt": prompt, "schema": described}
    doc = _reach(ctx, name, WaitKind.INPUT, _seconds(timeout), extra)
    if doc.get("timeout"):
        raise InputTimeout(name, _seconds(timeout))
    return _convert(schema, doc.get("r"))


def wait_for_event(name: str, timeout: float | dt.timedelta | None = None) -> Any:
    """Wait for the signal ``name`` (``handle.send(name, value)``) and return its value;
    ``InputTimeout`` after ``timeout``. Parks the run like ``wait_for_input``; a signal
    sent while the run is not waiting for it is refused (``WaitNotFound``)."""
    ctx = _run("wait_for_event")
    _check_name(name)
    doc = _reach(ctx, name, WaitKind.EVENT, _seconds(timeout), {})
    if doc.get("timeout"):
        raise InputTimeout(name, _seconds(timeout))
    return doc.get("r")


def sleep(seconds: float | dt.timedelta) -> None:
    """A durable sleep: inside a run, park it and let the monitor wake it at its due time
    (across worker and Redis restarts; nothing holds a worker meanwhile); outside a run,
    ``time.sleep``."""
    delay = _seconds(seconds)
    assert delay is not None
    ctx = current_run()
    if ctx is None:
        time.sleep(delay)
        return
    frame = current_frame()
    if frame is None:
        raise RunStateError("sleep inside a run must be called from its workflow or components")
    name = ctx.child(frame, "@sleep").key
    _reach(ctx, name, WaitKind.SLEEP, delay, {})
