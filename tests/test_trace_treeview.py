"""What the span tree shows, on real runs: siblings sorted without breaking the
hierarchy, folded subtrees, and a filter that keeps the ancestors of its matches."""

from __future__ import annotations

import pytest

from aiflow_nb.events.reader import read_events
from aiflow_nb.trace import SpanTree
from aiflow_nb.trace.treeview import fold_marks, fold_rows, match_rows, sort_siblings

from support.trace import traced


def _tree() -> SpanTree:
    handle = traced.start(tag="v", gate="", fan=3)
    handle.result(timeout=20)
    return SpanTree.from_events(read_events(handle.run_id, follow=False))


def _subtrees(rows: list) -> dict[str, set[str]]:  # type: ignore[type-arg]
    """Row key -> keys of the rows under it (the hierarchy, independent of order)."""
    out: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        under: set[str] = set()
        for nxt in rows[i + 1 :]:
            if nxt.depth <= row.depth:
                break
            under.add(nxt.key)
        out[row.key] = under
    return out


def test_sorting_siblings_keeps_every_subtree_under_its_row() -> None:
    tree = _tree()
    rows = tree.rows()
    by_tokens = sort_siblings(rows, "tokens", descending=True)
    assert _subtrees(by_tokens) == _subtrees(rows)
    kids = [r.label for r in by_tokens if r.depth == 1]
    assert kids[0] == "chat"  # the only child with tokens comes first
    by_name = sort_siblings(rows, "name")
    assert [r.label for r in by_name if r.depth == 1] == [
        "boom_with_fallback",
        "chat",
        "flaky",
        "leaf ×3",
    ]
    assert [r.label for r in by_name if r.depth == 2] == ["leaf [0]", "leaf [1]", "leaf [2]"]
    assert _subtrees(by_name) == _subtrees(rows)
    with pytest.raises(ValueError, match="cannot sort spans by 'bogus'"):
        sort_siblings(rows, "bogus")


def test_folding_hides_a_subtree_and_marks_rows_with_children() -> None:
    tree = _tree()
    rows = tree.rows()
    group = next(r for r in rows if r.group)
    root = rows[0]
    marks = fold_marks(rows, {group.key})
    assert marks == {root.key: "▾", group.key: "▸"}
    assert [r.label for r in fold_rows(rows, {group.key})] == [
        "traced",
        "flaky",
        "chat",
        "leaf ×3",
        "boom_with_fallback",
    ]
    assert [r.label for r in fold_rows(rows, {root.key})] == ["traced"]


def test_filter_matches_names_status_and_text_with_their_ancestors() -> None:
    tree = _tree()
    rows = tree.rows()
    assert [r.label for r in match_rows(rows, tree, "LEAF [1]")] == [
        "traced",
        "leaf ×3",
        "leaf [1]",
    ]
    assert [r.label for r in match_rows(rows, tree, "beta gamma")] == ["traced", "chat"]
    assert [r.label for r in match_rows(rows, tree, "bad value")] == [
        "traced",
        "boom_with_fallback",
    ]
    assert match_rows(rows, tree, "  ") == rows
    assert match_rows(rows, tree, "no such thing") == []
