"""``RunState``: one run folded from its events, the model behind every notebook view.

Pure and incremental: ``apply(event)`` is cheap, so a follower can fold thousands of
events and let the (throttled) renderer read the state when it draws.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import defaults
from ..access.spans import Span, apply_event
from ..events.model import Event

__all__ = ["ProgressStream", "RunState"]

_STATUS_BY_EVENT = {
    "run.queued": "queued", "run.started": "running", "run.resumed": "running",
    "run.completed": "completed", "run.failed": "failed", "run.cancelled": "cancelled",
}


@dataclass
class ProgressStream:
    """The latest ``progress()`` of one span."""

    span_id: str
    name: str
    done: float
    total: float | None
    message: str


@dataclass
class RunState:
    """Status, spans, progress, streamed text, error and output of one run."""

    run_id: str
    workflow: str | None = None
    status: str = "unknown"
    queued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    attempt: int = 0
    resumes: int = 0
    events: int = 0
    last_id: str | None = None
    spans: dict[str, Span] = field(default_factory=dict)
    progress: dict[str, ProgressStream] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    output: Any = None
    has_output: bool = False

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds since the run started (to its end once it ended)."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None and self.done else (now or time.time())
        return max(0.0, end - self.started_at)

    def apply_all(self, events: Iterable[Event]) -> RunState:
        for event in events:
            self.apply(event)
        return self

    def apply(self, e: Event) -> None:
        """Fold one event in."""
        self.events += 1
        self.last_id = e.id
        status = _STATUS_BY_EVENT.get(e.type)
        if status is not None:
            self._run_event(e, status)
            return
        span = apply_event(self.spans, e)
        if span is None:
            return
        if e.type == "progress":
            d = e.data
            self.progress.pop(span.span_id, None)  # keep the most recent streams last
            self.progress[span.span_id] = ProgressStream(
                span.span_id, span.name, float(d.get("done") or 0),
                None if d.get("total") is None else float(d["total"]), str(d.get("message", "")))
        elif e.type == "output.delta":
            text = self.text.get(span.span_id, "") + str(e.data.get("text", ""))
            self.text[span.span_id] = text[-defaults.WIDGET_MAX_TEXT:]

    def _run_event(self, e: Event, status: str) -> None:
        self.status = status
        d = e.data
        if e.type == "run.queued":
            self.workflow = d.get("workflow") or e.name
            self.queued_at = e.ts
        elif e.type in ("run.started", "run.resumed"):
            self.workflow = self.workflow or e.name
            self.started_at = self.started_at or e.ts
            self.attempt = int(d.get("attempt") or self.attempt + 1)
            self.resumes += e.type == "run.resumed"
            self.ended_at, self.error = None, None
        else:
            self.ended_at = e.ts
            if e.type == "run.completed":
                self.output, self.has_output = d.get("output"), True
            elif e.type == "run.failed":
                self.error = d.get("error") or {}

    def tree(self) -> list[tuple[int, Span]]:
        """Spans depth-first with their depth (roots first, children in call order)."""
        rows: list[tuple[int, Span]] = []
        stack = [(0, s) for s in reversed(list(self.spans.values()))
                 if s.parent_id is None or s.parent_id not in self.spans]
        while stack:
            depth, span = stack.pop()
            rows.append((depth, span))
            stack.extend((depth + 1, self.spans[c]) for c in reversed(span.children))
        return rows
