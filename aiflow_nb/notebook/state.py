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
from ..access.gaps import Gap
from ..access.spans import Span
from ..events.model import Event
from ..events.refs import ref_of, resolve
from ..events.status import TERMINAL_EVENTS
from ..trace.tree import SpanTree

__all__ = ["ProgressStream", "RunState"]

_CLOSES_WAIT = frozenset({"input.received", "run.started", "run.resumed", *TERMINAL_EVENTS})


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
    """Status, spans, progress, streamed text, error and output of one run.

    Spans and run totals are folded by ``trace.SpanTree`` (the dashboard's model), so
    the notebook and the viewer agree on every span, including ``interrupted`` ones;
    this class adds what only the notebook shows.
    """

    run_id: str
    events: int = 0
    progress: dict[str, ProgressStream] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    output: Any = None
    has_output: bool = False
    output_ref: dict[str, Any] | None = None
    """When ``run.completed`` referred to a large output instead of carrying it (its
    preview is ``output`` until ``resolve_output`` reads it from the record)."""
    waiting: str | None = None
    """While queued with no live worker able to take it: why (``ops/routing.py``)."""
    open_wait: dict[str, Any] | None = None
    """While parked: the wait it waits at (``run.waiting``'s data: name, kind, prompt,
    schema, deadline); None once answered, resumed or ended."""
    trace: SpanTree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.trace = SpanTree(self.run_id)

    @property
    def spans(self) -> dict[str, Span]:
        return self.trace.spans

    @property
    def status(self) -> str:
        return self.trace.status if self.events else "unknown"

    @property
    def workflow(self) -> str | None:
        return self.trace.totals.workflow

    @property
    def started_at(self) -> float | None:
        return self.trace.totals.started

    @property
    def ended_at(self) -> float | None:
        return self.trace.totals.ended

    @property
    def resumes(self) -> int:
        return self.trace.totals.resumes

    @property
    def last_id(self) -> str | None:
        return self.trace.totals.last_id

    @property
    def done(self) -> bool:
        return self.trace.totals.terminal

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds since the run first started (to its end once it ended), less any time
        it sat failed before a resume (``RunTotals.duration``)."""
        duration = self.trace.totals.duration(now or time.time())
        return None if duration is None else max(0.0, duration)

    def waited(self, now: float | None = None) -> float:
        """Seconds the run waited for a worker between attempts (part of ``elapsed``)."""
        return self.trace.totals.waiting(now or time.time())

    def apply_all(self, events: Iterable[Event]) -> RunState:
        for event in events:
            self.apply(event)
        return self

    def apply(self, e: Event) -> None:
        """Fold one event in."""
        self.events += 1
        span = self.trace.apply(e)
        if e.type == "run.waiting":
            self.open_wait = dict(e.data)
        elif e.type in _CLOSES_WAIT:
            self.open_wait = None
        if e.type in ("run.started", "run.resumed"):
            self.error = None
        elif e.type == "run.completed":
            self.output, self.has_output = e.data.get("output"), True
            self.output_ref = ref_of(e.data, "output")
            if self.output_ref is not None:
                self.output = f"{self.output_ref.get('preview', '')}…"
        elif e.type == "run.failed":
            self.error = e.data.get("error") or {}
        elif span is None:
            return
        elif e.type == "progress":
            d = e.data
            self.progress.pop(span.span_id, None)  # keep the most recent streams last
            self.progress[span.span_id] = ProgressStream(
                span.span_id,
                span.name,
                float(d.get("done") or 0),
                None if d.get("total") is None else float(d["total"]),
                str(d.get("message", "")),
            )
        elif e.type == "output.delta":
            text = span.text  # the span's, which a replay streams anew
            self.text[span.span_id] = text[-defaults.WIDGET_MAX_TEXT :]

    def resolve_output(self, client: Any) -> None:
        """Read a large output the run's end referred to from its record (one HGET)."""
        if self.output_ref is None:
            return
        data: dict[str, Any] = {"output_ref": self.output_ref}
        resolve(client, self.run_id, [data])
        if "output" in data:
            self.output, self.output_ref = data["output"], None

    def tree(self) -> list[tuple[int, Span | Gap]]:
        """Spans depth-first with their depth (roots first, children in call order); the
        gaps between attempts of a resumed run among the root's children, in time order."""
        rows: list[tuple[int, Span | Gap]] = []
        stack: list[tuple[int, Span | Gap]] = [
            (0, s)
            for s in reversed(list(self.spans.values()))
            if s.parent_id is None or s.parent_id not in self.spans
        ]
        while stack:
            depth, item = stack.pop()
            rows.append((depth, item))
            if isinstance(item, Span):
                stack.extend((depth + 1, c) for c in reversed(self._children(item)))
        return rows

    def _children(self, span: Span) -> list[Span | Gap]:
        kids: list[Span | Gap] = [self.spans[c] for c in span.children]
        if span.parent_id is not None:
            return kids
        for gap in self.trace.gaps:  # before the first child that started after it
            at = next((i for i, k in enumerate(kids) if _start(k) > gap.start), len(kids))
            kids.insert(at, gap)
        return kids


def _start(item: Span | Gap) -> float:
    return (item.start if item.start is not None else 0.0) if isinstance(item, Span) else item.start
