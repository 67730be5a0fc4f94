"""Run records as the API shows them: decoded, redacted, paged, awaited."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis
import redis.asyncio as aredis

from .. import defaults, keys
from ..access.handle import decode_record
from ..access.listing import newest, records
from ..authoring import registry
from ..errors import AiflowError, RunNotFound
from ..events.follow import Follow
from ..ops.answer import open_waits
from ..ops.routing import with_waiting
from ..redaction import Redactor
from ..store import sync_redis
from ..store.replies import RawHash
from .errors import ApiError
from .pool import api_redis

__all__ = [
    "afetch",
    "await_end",
    "fetch",
    "page",
    "redactor_for",
    "result",
    "secret_args_of",
    "view",
    "views",
]


def secret_args_of(workflow: str | None) -> frozenset[str]:
    """The secret input names of a workflow this API knows, else none."""
    if not workflow:
        return frozenset()
    try:
        return registry.get(workflow).secret_args
    except AiflowError:
        pass
    try:
        from . import catalog

        return catalog.get(workflow).secret_args
    except AiflowError:
        return frozenset()


def redactor_for(
    base: Redactor, rec: dict[str, Any], secret_args: frozenset[str] | None = None
) -> Redactor:
    """``base`` plus the run's secret inputs (names and values); ``secret_args`` when the
    caller already looked up those of the run's workflow."""
    if secret_args is None:
        secret_args = secret_args_of(rec.get("workflow"))
    recorded = rec.get("secret_args")  # what submit recorded (any workflow, even unknown here)
    names = secret_args | frozenset(recorded if isinstance(recorded, list) else ())
    return base.for_inputs(names, rec.get("inputs"))


def view(
    rec: dict[str, Any],
    redactor: Redactor,
    traceback: bool = True,
    secret_args: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The ``RunView`` document of a decoded record."""
    error = rec.get("error")
    if isinstance(error, dict) and not traceback:
        error = {k: v for k, v in error.items() if k != "traceback"}
    doc = {
        name: rec.get(name)
        for name in (
            "run_id",
            "workflow",
            "version",
            "status",
            "attempt",
            "restarts",
            "created_at",
            "started_at",
            "ended_at",
            "inputs",
            "output",
            "forked_from",
        )
    }
    doc["cancel_requested"] = bool(rec.get("cancel_requested"))
    doc["waiting"] = rec.get("waiting")
    doc["waits"] = list(open_waits(rec).values())
    doc["error"] = error if isinstance(error, dict) else None
    return redactor_for(redactor, rec, secret_args).apply(doc)  # type: ignore[no-any-return]


def views(
    recs: list[dict[str, Any]], redactor: Redactor, traceback: bool = True
) -> list[dict[str, Any]]:
    """``view`` of each record, looking up each workflow's secret inputs once (a workflow
    this process lacks costs Redis reads)."""
    secret = {w: secret_args_of(w) for w in {rec.get("workflow") for rec in recs}}
    return [view(rec, redactor, traceback, secret[rec.get("workflow")]) for rec in recs]


def fetch(run_id: str, client: redis.Redis | None = None) -> dict[str, Any]:
    """The decoded record of ``run_id`` (with ``waiting``, ``ops/routing.with_waiting``);
    ``RunNotFound`` when there is none."""
    raw = cast(RawHash, (client or sync_redis()).hgetall(keys.run(run_id)))
    if not raw:
        raise RunNotFound(run_id)
    return with_waiting([decode_record(raw)], client)[0]


async def afetch(run_id: str, client: aredis.Redis | None = None) -> dict[str, Any]:
    """Async twin of ``fetch``."""
    raw = cast(RawHash, await (client or api_redis()).hgetall(keys.run(run_id)))
    if not raw:
        raise RunNotFound(run_id)
    return decode_record(raw)


async def await_end(
    run_id: str, timeout: float, gone: Callable[[], Awaitable[bool]] | None = None
) -> str:
    """Wait up to ``timeout`` seconds for the run to end; return its status then. Checks
    ``gone()`` (the client hung up) about once a second and stops waiting if so."""
    client = api_redis()
    # blocks of at most 1 s, so gone() is asked at least once a second
    block_ms = min(defaults.FOLLOW_BLOCK_MS, 1000)
    # through a Redis outage too, but not past the wait's own end (then: 503)
    spec = Follow(
        run_id, replay=False, block_ms=block_ms, timeout=timeout, patience=timeout, ends_only=True
    )
    with contextlib.suppress(TimeoutError):
        async for _ in spec.abatches(client):
            if gone is not None and await gone():
                break
    raw = cast("bytes | None", await client.hget(keys.run(run_id), "status"))
    if raw is None:
        raise RunNotFound(run_id)
    return raw.decode()


def _cursor(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    score, _, run_id = text.partition(":")
    try:
        value = float(score)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not run_id:  # nan or inf would reach Redis as a bad score
        raise ApiError(
            400,
            "bad_cursor",
            f"cursor {text!r} is not one this API gave out; "
            "pass the next_cursor of a previous page",
        )
    return value, run_id


def page(
    workflow: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    client: redis.Redis | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Decoded records newest first after ``cursor``, and the cursor of the next page."""
    r: Any = client or sync_redis()
    wanted = None if status is None else status.encode()
    ids = newest(r, workflow, _cursor(cursor), batch=max(limit * 2, 100))
    found = [
        (rec, at)
        for raw, at in records(
            r, ids, limit, lambda raw: wanted is None or raw.get(b"status") == wanted
        )
        if (rec := decode_record(raw)) is not None
    ]
    more = len(found) == limit and bool(found)
    next_cursor = f"{found[-1][1][0]!r}:{found[-1][1][1]}" if more else None
    return with_waiting([rec for rec, _ in found], client), next_cursor


def result(rec: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The ``RunResult`` document: status and output, or the error without its traceback."""
    doc = view(rec, redactor, traceback=False)
    return {
        "run_id": doc["run_id"],
        "status": doc["status"],
        "output": doc["output"],
        "error": doc["error"],
    }
