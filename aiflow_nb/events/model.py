"""The event document stored in each stream entry."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from ..serialization import DUMPS_OPTIONS, dumps, loads
from .status import TERMINAL_EVENTS

__all__ = ["FIELD", "Event", "EventType", "encode_event", "make_payload"]

EventType = Literal[
    "run.queued",
    "run.started",
    "run.resumed",
    "run.completed",
    "run.failed",
    "run.cancelled",
    "span.started",
    "span.retrying",
    "span.cached",
    "span.replayed",
    "span.completed",
    "span.failed",
    "progress",
    "output.delta",
    "log",
    "publish",
    "notification",
]

FIELD = b"e"
"""The one field of each stream entry; its value is the JSON event document."""


@dataclass(slots=True)
class Event:
    """One event of a run. ``id`` is the Redis stream entry id (usable as Last-Event-ID)."""

    id: str
    type: str
    ts: float
    run_id: str
    span_id: str | None = None
    parent_id: str | None = None
    name: str | None = None
    attempt: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_entry(cls, entry_id: bytes | str, fields: dict[bytes, bytes], run_id: str) -> Event:
        """The event of one stream entry of run ``run_id``'s stream (documents omit the
        run id and their null fields; older ones carry them)."""
        doc = loads(fields[FIELD])
        doc.setdefault("run_id", run_id)
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return cls(id=eid, **doc)


def make_payload(
    type: str,
    run_id: str,
    *,
    span_id: str | None = None,
    parent_id: str | None = None,
    name: str | None = None,
    attempt: int | None = None,
    data: dict[str, Any] | None = None,
    ts: float | None = None,
) -> bytes:
    """The JSON document of one event, ready for XADD (``ts``: now unless given).

    Compact: the run id is the stream's (``Event.from_entry`` puts it back), and null
    fields and empty ``data`` are left out (readers default them)."""
    return encode_event(type, span_id, parent_id, name, attempt, data, ts)


def encode_event(
    type: str,
    span_id: str | None,
    parent_id: str | None,
    name: str | None,
    attempt: int | None,
    data: dict[str, Any] | None,
    ts: float | None,
) -> bytes:
    """``make_payload`` with every field given in order (the writer's hot path)."""
    doc: dict[str, Any] = {"type": type, "ts": time.time() if ts is None else ts}
    if span_id is not None:
        doc["span_id"] = span_id
    if parent_id is not None:
        doc["parent_id"] = parent_id
    if name is not None:
        doc["name"] = name
    if attempt is not None:
        doc["attempt"] = attempt
    if data:
        doc["data"] = data
    try:
        return orjson.dumps(doc, option=DUMPS_OPTIONS)  # ``dumps``, one call less: two per step
    except (TypeError, orjson.JSONEncodeError):
        return dumps(doc, f"{type} event data")  # raises SerializationError, naming the event
