"""A run's events as an HTTP stream: Server-Sent Events or NDJSON.

SSE: a ``retry:`` line first, then one message per event with ``id:`` = the event id
(so a browser ``EventSource`` resumes with ``Last-Event-ID`` on its own) and ``data:`` =
the event document; ``: keep-alive`` comments while idle. NDJSON: one event document a
line; blank lines are keep-alives. The stream ends after the terminal event.

A stream cut short (Redis unreachable past ``API_OUTAGE_PATIENCE``, or a follower too far
behind) says so before it closes cleanly: SSE, a comment and an ``event: interrupted``
message with no ``id:`` (so ``Last-Event-ID`` stays the last event's) whose data is an
error document (``{"error": "redis_unavailable", "message", "status": 503,
"retry_after"}``); NDJSON, that document as the last line. The client resumes with
``Last-Event-ID`` (``?after=``): no gap, no duplicate.

Events come from the app's ``FeedHub`` (one live Redis reader per run, shared by all its
followers), which also says when a keep-alive is due. Everything runs in the response's
own task, so a client going away cancels it and the follower unsubscribes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .. import defaults
from ..errors import RedisUnavailable
from ..redaction import Redactor
from ..serialization import dumps
from ..store.outage import CONNECTION_ERRORS
from .errors import ApiError
from .feeds import Shared

__all__ = ["MEDIA", "SSE_HEADERS", "event_stream", "negotiate", "parse_event_id"]

log = logging.getLogger("aiflow_nb.api")

MEDIA = {"sse": "text/event-stream", "ndjson": "application/x-ndjson"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_EVENT_ID = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?$")
_ID_PART_MAX = 2**64 - 1
"""The largest half of a stream id (Redis ids are two unsigned 64-bit integers)."""


def _in_range(value: str) -> bool:
    """Both parts fit Redis's 64-bit unsigned halves, and some id can follow it."""
    parts = [int(p) for p in value.split("-")]
    return all(p <= _ID_PART_MAX for p in parts) and parts != [_ID_PART_MAX] * 2


def parse_event_id(value: str | None, where: str) -> str | None:
    """A valid stream id or None; ``ApiError`` 400 for anything else."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not _EVENT_ID.match(value) or not _in_range(value):
        raise ApiError(
            400,
            "bad_event_id",
            f"{where} {value!r} is not an event id (ids look "
            "like 1732612345678-0; take them from the id: lines of the stream)",
        )
    return value


def negotiate(accept: str | None, fmt: str | None, default: str) -> str:
    """'sse', 'ndjson' or ``default`` (e.g. 'json') from ``?format=`` or ``Accept``."""
    if fmt:
        return fmt
    accept = (accept or "").lower()
    if "text/event-stream" in accept:
        return "sse"
    if "application/x-ndjson" in accept or "application/jsonl" in accept:
        return "ndjson"
    return default


def _encode(fmt: str, doc: dict[str, Any], event_id: str | None) -> bytes:
    body = dumps(doc, "event")
    if fmt == "ndjson":
        return body + b"\n"
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"data: " + body + b"\n\n"


def _interrupted(fmt: str, exc: Exception) -> bytes:
    """The last message of a stream cut short by ``exc`` (see the module docstring)."""
    if isinstance(exc, (RedisUnavailable, *CONNECTION_ERRORS)):
        code, status = "redis_unavailable", 503
        message = f"{exc} The stream was cut; resume with Last-Event-ID once Redis is back."
    else:
        code, status, message = "stream_interrupted", 500, f"{exc}; resume with Last-Event-ID"
    doc = {"error": code, "message": message, "status": status}
    doc["retry_after"] = defaults.API_RETRY_AFTER
    body = dumps(doc, "event")
    if fmt == "ndjson":
        return body + b"\n"
    comment = f": {code}: resume with Last-Event-ID\n".encode()
    return comment + b"event: interrupted\ndata: " + body + b"\n\n"


def _encoded(item: Shared, fmt: str, redactor: Redactor) -> bytes:
    data = item.encoded.get(fmt)
    if data is None:  # the first follower encodes; the others of the app reuse it
        data = item.encoded[fmt] = _encode(fmt, redactor.apply(item.event.to_dict()), item.event.id)
    return data


async def event_stream(
    items: AsyncIterator[list[Shared] | None],
    run_id: str,
    fmt: str,
    redactor: Redactor,
    retry_ms: int,
    final: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> AsyncIterator[bytes]:
    """The encoded stream of ``items`` (batches of a run's events; ``None`` = send a
    keep-alive), then ``final()`` if given. Runs in the response's task, so a disconnect
    cancels it there."""
    if fmt == "sse":
        yield f"retry: {retry_ms}\n\n".encode()
    try:
        async for batch in items:
            if batch is None:
                yield b": keep-alive\n\n" if fmt == "sse" else b"\n"
            else:  # one write for all the events that arrived together
                yield b"".join(_encoded(item, fmt, redactor) for item in batch)
    except Exception as exc:  # Redis went away mid-stream: say so, end the stream cleanly
        log.warning("event stream of run %s ended early: %s", run_id, exc)
        yield _interrupted(fmt, exc)
        return
    finally:
        await items.aclose()  # type: ignore[attr-defined]
    if final is not None:
        yield _encode(fmt, await final(), None)
