"""What the span tree shows of ``SpanTree.rows()``: siblings sorted by a column (the
hierarchy kept), collapsed subtrees hidden, and a filter over span names, status and
text that keeps the ancestors of every match (so a match is shown where it sits).

Rows are depth-first with ``depth``; a row's subtree is the rows after it that are
deeper. Each function returns new lists and never changes a row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .tree import SpanTree, TreeRow

__all__ = ["SORTABLE", "fold_marks", "fold_rows", "match_rows", "sort_siblings"]

SORTABLE = ("start", "duration", "tokens", "cost", "attempts", "name", "status")
"""The columns siblings can be sorted by."""


def _forest(rows: list[TreeRow]) -> list[tuple[TreeRow, list[Any]]]:
    """Rows as (row, children) nodes, from their depth-first order and depths."""
    roots: list[tuple[TreeRow, list[Any]]] = []
    stack: list[tuple[TreeRow, list[Any]]] = []
    for row in rows:
        node: tuple[TreeRow, list[Any]] = (row, [])
        while stack and stack[-1][0].depth >= row.depth:
            stack.pop()
        (stack[-1][1] if stack else roots).append(node)
        stack.append(node)
    return roots


def sort_siblings(rows: list[TreeRow], column: str, descending: bool = False) -> list[TreeRow]:
    """The rows with each row's children sorted by ``column`` (missing values last);
    every subtree moves with its row, so the hierarchy never breaks."""
    if column not in SORTABLE:
        raise ValueError(f"cannot sort spans by {column!r}; one of: {', '.join(SORTABLE)}")

    def key(node: tuple[TreeRow, list[Any]]) -> tuple[bool, Any]:
        value = getattr(node[0], column)
        return (value is None) != descending, value if value is not None else 0

    out: list[TreeRow] = []

    def walk(nodes: list[tuple[TreeRow, list[Any]]]) -> None:
        for row, kids in sorted(nodes, key=key, reverse=descending):
            out.append(row)
            walk(kids)

    walk(_forest(rows))
    return out


def fold_rows(rows: list[TreeRow], collapsed: set[str]) -> list[TreeRow]:
    """The rows less the subtrees of the rows whose key is in ``collapsed``."""
    out: list[TreeRow] = []
    hide_below: int | None = None
    for row in rows:
        if hide_below is not None and row.depth > hide_below:
            continue
        hide_below = row.depth if row.key in collapsed else None
        out.append(row)
    return out


def fold_marks(rows: list[TreeRow], collapsed: set[str]) -> dict[str, str]:
    """Row key -> ``▾`` (open) or ``▸`` (collapsed) for the rows that have children."""
    marks: dict[str, str] = {}
    for row, nxt in zip(rows, rows[1:], strict=False):
        if nxt.depth > row.depth:
            marks[row.key] = "▸" if row.key in collapsed else "▾"
    return marks


def match_rows(rows: list[TreeRow], tree: SpanTree, query: str) -> list[TreeRow]:
    """The rows whose span matches ``query`` (case-insensitive, in its name, status,
    markers, model, error or streamed text) and their ancestors; all rows for ""."""
    q = query.strip().lower()
    if not q:
        return rows
    hit = _matcher(tree, q)
    keep: list[bool] = [False] * len(rows)
    stack: list[int] = []  # indices of the current row's ancestors
    for i, row in enumerate(rows):
        while stack and rows[stack[-1]].depth >= row.depth:
            stack.pop()
        if hit(row):
            keep[i] = True
            for j in stack:
                keep[j] = True
        stack.append(i)
    return [row for row, k in zip(rows, keep, strict=True) if k]


def _matcher(tree: SpanTree, q: str) -> Callable[[TreeRow], bool]:
    def hit(row: TreeRow) -> bool:
        fields = [row.label, row.status, row.markers, row.model, row.span_id or ""]
        span = tree.spans.get(row.span_id or "")
        if span is not None:
            err = span.error or {}
            fields += [str(err.get("type") or ""), str(err.get("message") or ""), span.text]
        return any(q in f.lower() for f in fields)

    return hit
