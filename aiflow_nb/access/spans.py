"""Fold a run's events into spans: the data behind trees, tables and timelines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..events.model import Event
from ..events.refs import REF, ref_of, resolve
from ..events.status import SpanStatus
from .gaps import Gap

__all__ = [
    "COST",
    "INPUT_TOKENS",
    "MODEL",
    "OUTPUT_TOKENS",
    "SPAN_COLUMNS",
    "Span",
    "apply_event",
    "build_spans",
    "gap_row",
    "resolve_values",
    "spans_dataframe",
]

SPAN_COLUMNS = [
    "span_id",
    "parent_id",
    "name",
    "status",
    "start",
    "end",
    "duration",
    "attempts",
    "cached",
    "replayed",
    "replayed_from",
    "error",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
]

MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
COST = "aiflow.cost_usd"
"""Span attributes LLM spans carry (OpenTelemetry GenAI names where one exists)."""


@dataclass
class Span:
    """One component call as seen through its events (``end`` is None while running)."""

    span_id: str
    parent_id: str | None
    name: str
    key: str | None = None
    status: str = SpanStatus.RUNNING
    start: float | None = None
    end: float | None = None
    attempts: int = 0
    cached: bool = False
    replayed: bool = False
    replayed_from: str | None = None
    """The run a rerun's replayed span was recorded in (``replayed from <run id>``)."""
    fallback: bool = False
    error: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    output: Any = None
    retries: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    progress: dict[str, Any] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``inputs`` / ``output`` the events referred to instead of carrying them (large
    values stored once: ``events/refs.py``): size, preview, where. ``resolve_values``
    reads them in."""

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start

    def row(self) -> dict[str, Any]:
        err = self.error
        return {
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "attempts": self.attempts,
            "cached": self.cached,
            "replayed": self.replayed,
            "replayed_from": self.replayed_from,
            "error": f"{err.get('type')}: {err.get('message')}" if err else None,
            "model": self.attributes.get(MODEL),
            "input_tokens": self.attributes.get(INPUT_TOKENS),
            "output_tokens": self.attributes.get(OUTPUT_TOKENS),
            "cost_usd": self.attributes.get(COST),
        }


def _value(span: Span, name: str, d: dict[str, Any]) -> Any:
    """``d[name]``, noting a reference when the event carries one instead."""
    ref = ref_of(d, name)
    if ref is None:
        span.refs.pop(name, None)
        return d.get(name)
    span.refs[name] = ref
    return None


def _apply(span: Span, e: Event) -> None:
    d = e.data
    if e.type == "span.started":
        if span.start is None or not (span.children or span.parent_id is None):
            span.start = e.ts  # a root or parent started again keeps its first start
        span.status, span.end, span.error = SpanStatus.RUNNING, None, None
        span.inputs, span.key = _value(span, "inputs", d), d.get("key")
        span.retries, span.text = [], ""  # a span that runs again streams its text anew
        span.attributes.update(d.get("attributes") or {})
    elif e.type == "span.retrying":
        span.attempts = max(span.attempts, e.attempt or 0)
        span.retries.append({"attempt": e.attempt, "error": d.get("error"), "wait": d.get("wait")})
    elif e.type in ("span.cached", "span.replayed"):
        span.cached = span.cached or e.type == "span.cached"
        span.replayed = e.type == "span.replayed"
        span.replayed_from = d.get("replayed_from") if span.replayed else None
        _times(span, e)
        span.status, span.output = SpanStatus.COMPLETED, _value(span, "output", d)
        span.key = d.get("key", span.key)
        span.attributes.update(d.get("attributes") or {})
    elif e.type == "span.completed":
        span.status, span.end = SpanStatus.COMPLETED, e.ts
        span.output = _value(span, "output", d)
        span.attempts = d.get("attempts", span.attempts)
        span.fallback = bool(d.get("fallback"))
        span.error = d.get("error")
        span.attributes.update(d.get("attributes") or {})
    elif e.type == "span.failed":
        span.status = SpanStatus.CANCELLED if d.get("cancelled") else SpanStatus.FAILED
        span.end, span.error = e.ts, d.get("error")
        span.attempts = d.get("attempts", span.attempts)
        span.attributes.update(d.get("attributes") or {})
    elif e.type == "output.delta":
        if span.status != SpanStatus.RUNNING:  # a replay streams the recorded text again
            span.status, span.text = SpanStatus.RUNNING, ""
        span.text += d.get("text", "")
    elif e.type == "progress":
        span.progress = d


def _times(span: Span, e: Event) -> None:
    """A cached or replayed span's start and end: the original attempt's when the event
    carries them (``span.replayed`` of a journal entry that recorded them) or the span
    was seen completing before; else the event's own time."""
    d = e.data
    if d.get("start") is not None and d.get("end") is not None:
        span.start, span.end = float(d["start"]), float(d["end"])
    elif not (span.status == SpanStatus.COMPLETED and span.end is not None):
        span.start = span.start if span.start is not None else e.ts
        span.end = e.ts


def apply_event(spans: dict[str, Span], e: Event) -> Span | None:
    """Fold one event into ``spans`` (in place); the span it touched, if any."""
    if e.span_id is None:
        return None
    span = spans.get(e.span_id)
    if span is None:
        name = (e.name or "?") if e.type.startswith("span.") else "?"
        span = Span(span_id=e.span_id, parent_id=e.parent_id, name=name)
        spans[e.span_id] = span
        parent = spans.get(e.parent_id) if e.parent_id else None
        if parent is not None:
            parent.children.append(span.span_id)
    if e.name and span.name == "?" and e.type.startswith("span."):
        span.name = e.name
    _apply(span, e)
    return span


def build_spans(events: Iterable[Event]) -> dict[str, Span]:
    """Spans by id, in order of first appearance; parents list their children."""
    spans: dict[str, Span] = {}
    for e in events:
        apply_event(spans, e)
    return spans


def resolve_values(spans: Iterable[Span], run_id: str, client: Any) -> None:
    """Read the values the spans' events referred to (the run record's inputs and
    output, journaled step results: one pipelined read) into ``inputs`` / ``output``;
    a value stored nowhere (a large step argument) keeps its reference (its preview)."""
    wanted = [(span, name, {name + REF: ref}) for span in spans for name, ref in span.refs.items()]
    resolve(client, run_id, [data for *_, data in wanted])
    for span, name, data in wanted:
        if name in data:
            setattr(span, name, data[name])
            del span.refs[name]


def gap_row(gap: Gap, parent_id: str | None) -> dict[str, Any]:
    """A gap between two attempts as a row of ``SPAN_COLUMNS`` (status ``waiting``,
    span id ``gap:<n>``, under the root span; ``end`` None while the run still waits)."""
    row: dict[str, Any] = dict.fromkeys(SPAN_COLUMNS)
    row.update(span_id=gap.key, parent_id=parent_id, name=gap.label, status=SpanStatus.WAITING)
    row.update(start=gap.start, end=gap.end, attempts=0, cached=False, replayed=False)
    row["duration"] = None if gap.end is None else gap.end - gap.start
    return row


def spans_dataframe(
    spans: Iterable[Span] | dict[str, Span], gaps: Iterable[Gap] = ()
) -> pd.DataFrame:
    """One row per span with the columns in ``SPAN_COLUMNS``, then one per gap between
    two attempts of the run (``gap_row``)."""
    values = list(spans.values() if isinstance(spans, dict) else spans)
    root = next((s.span_id for s in values if s.parent_id is None), None)
    rows = [s.row() for s in values] + [gap_row(g, root) for g in gaps]
    frame = pd.DataFrame(rows, columns=SPAN_COLUMNS)
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col], unit="s", utc=True)
    return frame
