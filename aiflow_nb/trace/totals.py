"""Run-level totals folded from events one at a time: spans, retries, errors, tokens, cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..access.gaps import Gap, Gaps
from ..access.spans import COST, INPUT_TOKENS, MODEL, OUTPUT_TOKENS
from ..events.model import Event
from ..events.status import STATUS_OF_EVENT, TERMINAL, RunStatus

__all__ = ["COST", "INPUT_TOKENS", "MODEL", "OUTPUT_TOKENS", "RunTotals", "span_usage"]


def span_usage(attributes: dict[str, Any]) -> tuple[int, int, float]:
    """(input tokens, output tokens, cost in USD) of one span's attributes."""
    return (
        int(attributes.get(INPUT_TOKENS) or 0),
        int(attributes.get(OUTPUT_TOKENS) or 0),
        float(attributes.get(COST) or 0.0),
    )


@dataclass
class RunTotals:
    """Counters of one run; ``apply`` each event in stream order."""

    status: str = RunStatus.QUEUED
    workflow: str | None = None
    started: float | None = None
    ended: float | None = None
    last_id: str | None = None
    resumes: int = 0
    retries: int = 0
    errors: int = 0
    cached: int = 0
    replayed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    span_ids: set[str] = field(default_factory=set)
    gaps: Gaps = field(default_factory=Gaps)
    """The gaps between attempts (waiting for a worker, sat failed until resumed)."""

    @property
    def spans(self) -> int:
        return len(self.span_ids)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def duration(self, now: float) -> float | None:
        """Seconds from the first start to the end (or to ``now`` while running), less the
        time the run sat failed before a resume; time waiting for a worker counts."""
        if self.started is None:
            return None
        end = self.ended if self.ended is not None else now
        return end - self.started - self.gaps.idle(end)

    def waiting(self, now: float) -> float:
        """Seconds the run waited for a worker between attempts (part of ``duration``)."""
        return self.gaps.waiting(self.ended if self.ended is not None else now)

    def apply(self, e: Event) -> Gap | None:
        """Fold one event; the gap between attempts it opened or closed, if any."""
        self.last_id = e.id
        gap = self.gaps.apply(e)
        if e.type in STATUS_OF_EVENT:
            self._run_event(e)
        elif e.type in ("span.started", "span.cached", "span.replayed") and e.span_id:
            self.span_ids.add(e.span_id)
            self.cached += e.type == "span.cached"
            self.replayed += e.type == "span.replayed"
        elif e.type == "span.retrying":
            self.retries += 1
        elif e.type in ("span.completed", "span.failed"):
            self.errors += e.type == "span.failed" and not e.data.get("cancelled")
            tin, tout, cost = span_usage(e.data.get("attributes") or {})
            self.input_tokens += tin
            self.output_tokens += tout
            self.cost += cost
        return gap

    def _run_event(self, e: Event) -> None:
        self.status = STATUS_OF_EVENT[e.type]
        self.workflow = e.name or self.workflow
        if e.type in ("run.started", "run.resumed"):
            self.started = self.started if self.started is not None else e.ts
            self.ended = None
            self.resumes += e.type == "run.resumed"
        elif e.type not in ("run.queued", "run.waiting"):  # parked time counts in the
            self.ended = e.ts  # duration, like waiting for a worker

    def row(self, now: float) -> dict[str, Any]:
        return {
            "spans": self.spans,
            "retries": self.retries,
            "errors": self.errors,
            "tokens": self.tokens,
            "cost": round(self.cost, 6),
            "duration": self.duration(now),
            "waiting": round(self.waiting(now), 3),
        }
