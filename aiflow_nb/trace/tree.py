"""``SpanTree``: a run's spans, built one event at a time, for live views.

It extends ``access.spans`` (the same ``Span`` objects, folded by ``apply_event``)
with what a viewer needs: run-level status and totals, spans left running by a
crashed attempt marked ``interrupted``, and a depth-first order in which the
siblings of a fan-out (several calls of one component under one parent) are
grouped under one row. The gaps between attempts of a resumed run (``access.gaps``)
are rows too, among the root's children in time order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..access.gaps import Gap
from ..access.spans import Span, apply_event
from ..events.model import Event
from ..events.status import SpanStatus
from .totals import MODEL, RunTotals, span_usage

__all__ = ["TREE_COLUMNS", "SpanTree", "TreeRow", "Usage", "markers"]

TREE_COLUMNS = [
    "key",
    "span_id",
    "depth",
    "label",
    "name",
    "status",
    "start",
    "duration",
    "attempts",
    "markers",
    "model",
    "tokens",
    "cost",
    "group",
    "gap",
]

_ENDING = frozenset({"run.resumed", "run.completed", "run.failed", "run.cancelled"})

_GROUP_PRECEDENCE = (
    SpanStatus.FAILED,
    SpanStatus.RUNNING,
    SpanStatus.INTERRUPTED,
    SpanStatus.CANCELLED,
)
"""A grouped row shows the first of these its members have, else completed."""


@dataclass
class TreeRow:
    """One row of the tree view: a span, or the header of a fan-out group (``group``)."""

    key: str
    span_id: str | None
    depth: int
    label: str
    name: str
    status: str
    start: float | None
    duration: float | None
    attempts: int = 0
    markers: str = ""
    model: str = ""
    tokens: int = 0
    """Of the span's whole subtree (its own plus its descendants'), as is ``cost``."""
    cost: float = 0.0
    group: bool = False
    gap: bool = False
    """A gap between two attempts (``waiting``), not a span."""
    replayed_from: str | None = None
    """The run a rerun's replayed span was recorded in (``markers``: ``replayed from``)."""


def markers(span: Span) -> str:
    """Short flags of a span: cached, replayed, fallback, retried."""
    if not (span.cached or span.replayed or span.fallback or span.retries):
        return ""
    flags = [
        name
        for name, on in (
            ("cached", span.cached),
            (
                f"replayed from {span.replayed_from}" if span.replayed_from else "replayed",
                span.replayed,
            ),
            ("fallback", span.fallback),
        )
        if on
    ]
    if span.retries:
        flags.append(f"retried ×{len(span.retries)}")
    return " ".join(flags)


class SpanTree:
    """The spans and totals of one run; ``apply`` events in stream order."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self.spans: dict[str, Span] = {}
        self.totals = RunTotals()
        self.version = 0
        self.log: list[dict[str, Any]] = []
        self.interruptions: Counter[str] = Counter()
        """Span id -> how many times a run's end (or a crash) cut that span off."""
        self.publishes: list[dict[str, Any]] = []
        """``publish()`` events in order: ts, span_id, label, value."""
        self._rollup: dict[str, Usage] = {}
        self._rollup_version = -1

    @classmethod
    def from_events(cls, events: Iterable[Event], run_id: str | None = None) -> SpanTree:
        tree = cls(run_id)
        tree.extend(events)
        return tree

    # --- folding ------------------------------------------------------------
    def apply(self, e: Event) -> Span | None:
        """Fold one event; the span it touched, if any."""
        self.version += 1
        self.run_id = self.run_id or e.run_id
        gap = self.totals.apply(e)
        parked = gap is not None and gap.parked is not None and e.type == "run.resumed"
        if e.type in _ENDING and not parked:  # a crash cut its spans off at the attempt's
            # last sign of life; a parked run's spans were not cut off: they wait
            self._interrupt(gap.start if gap is not None and e.type == "run.resumed" else e.ts)
        if e.type == "log":
            self.log.append({"ts": e.ts, "span_id": e.span_id, **e.data})
        elif e.type == "publish":
            self.publishes.append(
                {
                    "ts": e.ts,
                    "span_id": e.span_id,
                    "label": e.data.get("label", e.name or ""),
                    "value": e.data.get("value"),
                }
            )
        return apply_event(self.spans, e)

    def extend(self, events: Iterable[Event]) -> int:
        """Fold many events; how many."""
        n = 0
        for e in events:
            self.apply(e)
            n += 1
        return n

    def _interrupt(self, ts: float) -> None:
        """Spans still running when their attempt of the run ended were cut off."""
        for span in self.spans.values():
            if span.status == SpanStatus.RUNNING:
                span.status, span.end = SpanStatus.INTERRUPTED, ts
                self.interruptions[span.span_id] += 1

    # --- views ----------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.totals.status

    @property
    def t0(self) -> float | None:
        """The earliest span start (the time origin of the timeline)."""
        starts = [s.start for s in self.spans.values() if s.start is not None]
        return min(starts) if starts else self.totals.started

    @property
    def gaps(self) -> list[Gap]:
        """The gaps between the run's attempts, in order."""
        return self.totals.gaps.items

    def rollup(self, span_id: str) -> Usage:
        """Tokens and cost of the span and everything under it (its subtree)."""
        if self._rollup_version != self.version:
            self._rollup = _rollups(self.spans)
            self._rollup_version = self.version
        return self._rollup.get(span_id, Usage())

    def roots(self) -> list[Span]:
        return [
            s for s in self.spans.values() if s.parent_id is None or s.parent_id not in self.spans
        ]

    def running(self) -> list[Span]:
        return [s for s in self.spans.values() if s.status == SpanStatus.RUNNING]

    def ordered(self) -> list[Span]:
        """Spans depth-first (children in order of first appearance)."""
        return [self.spans[r.span_id] for r in self.rows() if r.span_id is not None]

    def rows(self, now: float | None = None) -> list[TreeRow]:
        """The tree view: depth-first, fan-out siblings under one group row."""
        now = time.time() if now is None else now
        t0 = self.t0 or now
        return self._subtree(self.roots(), 0, t0, now)

    def _subtree(self, siblings: list[Span], depth: int, t0: float, now: float) -> list[TreeRow]:
        out: list[TreeRow] = []
        for name, members in _by_name(siblings):
            grouped = len(members) > 1
            if grouped:
                out.append(self._group_row(name, members, depth, t0, now))
            for i, span in enumerate(members):
                d = depth + grouped
                out.append(self._span_row(span, d, t0, now, i if grouped else None))
                kids = [self.spans[c] for c in span.children if c in self.spans]
                rows = self._subtree(kids, d + 1, t0, now) if kids else []
                if span.parent_id is None and self.gaps:
                    rows = self._with_gaps(rows, d + 1, t0, now)
                out.extend(rows)
        return out

    def _with_gaps(self, rows: list[TreeRow], depth: int, t0: float, now: float) -> list[TreeRow]:
        """The root's children's rows with one row per gap, each before the first child
        that started after it."""
        pending = [_gap_row(g, depth, t0, now) for g in self.gaps]
        out: list[TreeRow] = []
        for row in rows:
            while pending and row.depth == depth and (row.start or 0.0) > (pending[0].start or 0.0):
                out.append(pending.pop(0))
            out.append(row)
        return out + pending

    def _span_row(
        self, span: Span, depth: int, t0: float, now: float, index: int | None
    ) -> TreeRow:
        usage = self.rollup(span.span_id)
        end = span.end if span.end is not None else now
        label = span.name if index is None else f"{span.name} [{index}]"
        return TreeRow(
            key=span.span_id,
            span_id=span.span_id,
            depth=depth,
            label=label,
            name=span.name,
            status=span.status,
            start=None if span.start is None else span.start - t0,
            duration=None if span.start is None else end - span.start,
            attempts=len(span.retries) + 1 if span.status == SpanStatus.RUNNING else span.attempts,
            markers=self.span_markers(span),
            model=str(span.attributes.get(MODEL) or ""),
            tokens=usage.tokens,
            cost=usage.cost,
            replayed_from=span.replayed_from,
        )

    def span_markers(self, span: Span) -> str:
        """``markers(span)`` plus how often a run's end cut it off (``interrupted ×N``)."""
        cut = self.interruptions.get(span.span_id)
        return " ".join(m for m in (markers(span), f"interrupted ×{cut}" if cut else "") if m)

    def _group_row(
        self, name: str, members: list[Span], depth: int, t0: float, now: float
    ) -> TreeRow:
        starts = [s.start for s in members if s.start is not None]
        ends = [s.end if s.end is not None else now for s in members if s.start is not None]
        counts: dict[str, int] = {}
        for s in members:
            counts[s.status] = counts.get(s.status, 0) + 1
        status = next(
            (st for st in _GROUP_PRECEDENCE if counts.get(st)),
            SpanStatus.COMPLETED,
        )
        summary = ", ".join(f"{n} {st}" for st, n in counts.items())
        usage = [self.rollup(s.span_id) for s in members]
        return TreeRow(
            key=f"{members[0].parent_id}/{name}*",
            span_id=None,
            depth=depth,
            label=f"{name} ×{len(members)}",
            name=name,
            status=status,
            start=min(starts) - t0 if starts else None,
            duration=max(ends) - min(starts) if starts else None,
            markers=summary,
            tokens=sum(u.tokens for u in usage),
            cost=sum(u.cost for u in usage),
            group=True,
        )

    def frame(self, now: float | None = None, rows: list[TreeRow] | None = None) -> pd.DataFrame:
        """The tree view (``rows``, or ``rows(now)``) as a DataFrame of ``TREE_COLUMNS``."""
        rows = self.rows(now) if rows is None else rows
        return pd.DataFrame([vars(r) for r in rows], columns=TREE_COLUMNS)


@dataclass
class Usage:
    """Tokens and cost (USD) summed over spans."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost


def _rollups(spans: dict[str, Span]) -> dict[str, Usage]:
    """Each span's own usage plus its children's roll-ups (a replayed span spent nothing:
    its attributes are the recorded call's). A child is always added after its parent,
    so folding in reverse order of addition visits children first."""
    out = {
        sid: Usage() if s.replayed else Usage(*span_usage(s.attributes)) for sid, s in spans.items()
    }
    order = {sid: i for i, sid in enumerate(spans)}
    for sid in reversed(order):
        parent = spans[sid].parent_id
        # a parent seen before the child lists it among its children (``apply_event``)
        if parent is not None and order.get(parent, order[sid]) < order[sid]:
            out[parent].add(out[sid])
    return out


def _gap_row(gap: Gap, depth: int, t0: float, now: float) -> TreeRow:
    return TreeRow(
        key=gap.key,
        span_id=None,
        depth=depth,
        label=gap.label,
        name=gap.label,
        status=SpanStatus.WAITING,
        start=gap.start - t0,
        duration=gap.duration(now),
        attempts=gap.attempt or 0,
        markers="" if gap.attempt is None else f"until attempt {gap.attempt}",
        gap=True,
    )


def _by_name(siblings: list[Span]) -> list[tuple[str, list[Span]]]:
    """Siblings grouped by component name, groups in order of first appearance."""
    groups: dict[str, list[Span]] = {}
    for span in siblings:
        groups.setdefault(span.name, []).append(span)
    return list(groups.items())
