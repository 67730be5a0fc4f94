"""Run-level totals folded from events one at a time: spans, retries, errors, tokens, cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..access.gaps import Gap, Gaps
from ..access.spans import COST, INPUT_TOKENS, MODEL, OUTPUT_TOKENS
from ..events.model import Event
from ..events.status import STATUS_OF_EVENT, TERMINAL, RunStatus

__all__ = [
    "COST",
    "INPUT_TOKENS",
    "LLM_OPERATION",
    "MODEL",
    "OUTPUT_TOKENS",
    "RunTotals",
    "money",
    "span_usage",
]

LLM_OPERATION = "gen_ai.operation.name"
"""The attribute every LLM span carries (``llm/attributes.py``): what tells one apart."""


def money(value: float | None) -> str:
    """US dollars to 4 significant digits (``$0.002100``, never ``$0.0000`` for a real
    cost; below a micro-dollar in exponent form); ``$0`` for nothing spent."""
    if not value:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) < 1e-6:
        return f"${value:.3e}"
    decimals = 3 - math.floor(math.log10(abs(value)))
    return f"${value:.{decimals}f}"


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
    steps_replayed: int = 0
    """Steps replayed (from the journal, or a rerun's seed), with those nested under a
    replayed step (which replaying it skips)."""
    llm_replayed: int = 0
    """LLM calls replayed instead of requested (nested under a replayed step too)."""
    tokens_saved: int = 0
    """Tokens the replayed spans' recorded calls used: not spent by this run."""
    cost_saved: float = 0.0
    """USD the replayed spans' recorded calls cost: not spent by this run."""
    forked_from: str | None = None
    """The run this one is a rerun of (its ``run.queued`` says so), else None."""
    executed_ids: set[str] = field(default_factory=set)
    """Spans below the root that executed (started and not answered by the cache)."""
    llm_executed_ids: set[str] = field(default_factory=set)
    span_ids: set[str] = field(default_factory=set)
    gaps: Gaps = field(default_factory=Gaps)
    """The gaps between attempts (waiting for a worker, sat failed until resumed)."""

    @property
    def spans(self) -> int:
        return len(self.span_ids)

    @property
    def executed(self) -> int:
        """Steps (spans below the root, LLM calls included) that executed."""
        return len(self.executed_ids)

    @property
    def llm_executed(self) -> int:
        """LLM calls that executed (requested from a provider)."""
        return len(self.llm_executed_ids)

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
            self._step(e)
        elif e.type == "span.retrying":
            self.retries += 1
        elif e.type in ("span.completed", "span.failed"):
            self.errors += e.type == "span.failed" and not e.data.get("cancelled")
            tin, tout, cost = span_usage(e.data.get("attributes") or {})
            self.input_tokens += tin
            self.output_tokens += tout
            self.cost += cost
        return gap

    def _step(self, e: Event) -> None:
        """Count a step executed (``span.started`` below the root), answered by the
        cache after all, or replayed (with what its recorded call spent: saved)."""
        assert e.span_id is not None
        attributes = e.data.get("attributes") or {}
        if e.type == "span.started" and e.parent_id is not None:
            self.executed_ids.add(e.span_id)
            if LLM_OPERATION in attributes:
                self.llm_executed_ids.add(e.span_id)
        elif e.type == "span.cached":
            self.executed_ids.discard(e.span_id)
            self.llm_executed_ids.discard(e.span_id)
        elif e.type == "span.replayed":
            saved = e.data.get("saved") or {}
            self.steps_replayed += 1 + int(saved.get("steps") or 0)
            self.llm_replayed += (LLM_OPERATION in attributes) + int(saved.get("llm_calls") or 0)
            tin, tout, cost = span_usage(attributes)
            self.tokens_saved += tin + tout
            self.tokens_saved += int(saved.get("input_tokens") or 0)
            self.tokens_saved += int(saved.get("output_tokens") or 0)
            self.cost_saved += cost + float(saved.get("cost") or 0.0)

    def savings(self) -> dict[str, Any]:
        """Steps and LLM calls replayed vs executed, and the tokens and USD not spent."""
        return {
            "steps_replayed": self.steps_replayed,
            "steps_executed": self.executed,
            "llm_replayed": self.llm_replayed,
            "llm_executed": self.llm_executed,
            "tokens_saved": self.tokens_saved,
            "cost_saved": round(self.cost_saved, 6),
        }

    def _run_event(self, e: Event) -> None:
        self.status = STATUS_OF_EVENT[e.type]
        self.workflow = e.name or self.workflow
        if e.type == "run.queued" and e.data.get("forked_from"):
            self.forked_from = str(e.data["forked_from"])
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
