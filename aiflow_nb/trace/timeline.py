"""Waterfall timeline rows: one bar per span, in tree order, running bars drawn to now."""

from __future__ import annotations

import time
from typing import Any

from ..events.status import SpanStatus
from .tree import SpanTree, TreeRow

__all__ = [
    "PUBLISH_COLUMNS",
    "STATUS_COLORS",
    "TIMELINE_COLUMNS",
    "publish_points",
    "timeline_rows",
]

STATUS_COLORS = {
    "running": "#3b82f6",
    "completed": "#22c55e",
    "failed": "#ef4444",
    "cancelled": "#6b7280",
    "interrupted": "#f59e0b",
    "cached": "#06b6d4",
    "replayed": "#a855f7",
    "waiting": "#d1d5db",
}
"""Bar colour by span state (cached and replayed spans get their own; ``waiting``: a gap
between two attempts of a resumed run)."""

TIMELINE_COLUMNS = [
    "span_id",
    "label",
    "y",
    "left",
    "right",
    "status",
    "color",
    "running",
    "duration",
]


def timeline_rows(
    tree: SpanTree, now: float | None = None, rows: list[TreeRow] | None = None
) -> dict[str, list[Any]]:
    """Columns for a Bokeh ``ColumnDataSource``: seconds from the run's first start.

    A span still running ends at ``now`` (and has ``running`` True), so its bar grows.
    A gap between two attempts is a ``waiting`` bar (span id ``gap:<n>``).
    ``rows`` are the tree's ``rows(now)`` when the caller has them already.
    """
    now = time.time() if now is None else now
    cols: dict[str, list[Any]] = {c: [] for c in TIMELINE_COLUMNS}
    t0 = tree.t0
    if t0 is None:
        return cols
    y = 0
    waiting = {g.key for g in tree.gaps if g.end is None}
    for row in tree.rows(now) if rows is None else rows:
        if row.gap and row.start is not None:
            _append(cols, **_gap_bar(row, y, row.key in waiting))
            y += 1
            continue
        if row.span_id is None or row.start is None:
            continue
        span = tree.spans[row.span_id]
        state = "cached" if span.cached else "replayed" if span.replayed else span.status
        right = row.start + (row.duration or 0.0)
        _append(
            cols,
            span_id=span.span_id,
            label="  " * row.depth + row.label,
            y=y,
            left=row.start,
            right=right,
            status=span.status,
            color=STATUS_COLORS.get(state, "#9ca3af"),
            running=span.status == SpanStatus.RUNNING,
            duration=row.duration,
        )
        y += 1
    return cols


PUBLISH_COLUMNS = ["x", "y", "label", "span_id", "value"]


def publish_points(tree: SpanTree, cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """One marker per ``publish()`` event, on its span's bar (``cols``: ``timeline_rows``),
    at seconds from the run's first start; ``value`` a short preview of what was published."""
    out: dict[str, list[Any]] = {c: [] for c in PUBLISH_COLUMNS}
    t0 = tree.t0
    if t0 is None:
        return out
    y_of = dict(zip(cols["span_id"], cols["y"], strict=True))
    for p in tree.publishes:
        y = y_of.get(p.get("span_id"))
        if y is None:
            continue
        preview = repr(p.get("value"))
        _append(
            out,
            x=p["ts"] - t0,
            y=y,
            label=str(p.get("label") or ""),
            span_id=p.get("span_id"),
            value=preview if len(preview) <= 80 else preview[:79] + "…",
        )
    return out


def _gap_bar(row: TreeRow, y: int, running: bool) -> dict[str, Any]:
    return {
        "span_id": row.key,
        "label": "  " * row.depth + row.label,
        "y": y,
        "left": row.start,
        "right": (row.start or 0.0) + (row.duration or 0.0),
        "status": row.status,
        "color": STATUS_COLORS[SpanStatus.WAITING],
        "running": running,  # still waiting: its bar grows like a running span's
        "duration": row.duration,
    }


def _append(cols: dict[str, list[Any]], **values: Any) -> None:
    for name, value in values.items():
        cols[name].append(value)
