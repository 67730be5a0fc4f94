"""Comparing two runs step by step (typically a run and its rerun): ``compare`` aligns
their spans by step key, ``diff_outputs`` diffs one step's outputs as pretty JSON."""

from __future__ import annotations

import difflib
import json
from typing import Any

import pandas as pd

from .handle import RunHandle
from .spans import COST, INPUT_TOKENS, OUTPUT_TOKENS, Span

__all__ = ["COMPARE_COLUMNS", "compare", "diff_outputs"]

COMPARE_COLUMNS = [
    "step",
    "name",
    "status_a",
    "status_b",
    "replayed_b",
    "output_changed",
    "duration_a",
    "duration_b",
    "tokens_a",
    "tokens_b",
    "cost_a",
    "cost_b",
]


def _handle(run: str | RunHandle) -> RunHandle:
    return run if isinstance(run, RunHandle) else RunHandle(run)


def _steps(run: str | RunHandle) -> dict[str, Span]:
    """The run's spans by step key (its outputs read in), in order of first appearance;
    ``RunNotFound`` for an unknown run."""
    handle = _handle(run)
    handle.record()  # RunNotFound, rather than an empty comparison
    return {s.key: s for s in handle.spans() if s.key is not None}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _spent(span: Span | None) -> tuple[int | None, float | None]:
    """(tokens, USD) the span spent: None for a span with no usage, nothing for a
    replayed one (its attributes are what the recorded call spent)."""
    if span is None:
        return None, None
    attrs = span.attributes
    tokens = None
    if INPUT_TOKENS in attrs or OUTPUT_TOKENS in attrs:
        tokens = int(attrs.get(INPUT_TOKENS) or 0) + int(attrs.get(OUTPUT_TOKENS) or 0)
    cost = attrs.get(COST)
    if span.replayed:
        return (None if tokens is None else 0), (None if cost is None else 0.0)
    return tokens, (None if cost is None else float(cost))


def compare(run_a: str | RunHandle, run_b: str | RunHandle) -> pd.DataFrame:
    """One row per step key of either run (``run_a``'s order, then ``run_b``'s new ones)
    with the columns in ``COMPARE_COLUMNS``: status in each run (None: the step is not in
    that run), whether ``run_b`` replayed it, whether its output differs, and each run's
    duration, tokens and USD spent on it (a replayed step spent none: 0)."""
    a, b = _steps(run_a), _steps(run_b)
    rows = []
    for key in [*a, *(k for k in b if k not in a)]:
        sa, sb = a.get(key), b.get(key)
        either = sa or sb
        assert either is not None
        (tokens_a, cost_a), (tokens_b, cost_b) = _spent(sa), _spent(sb)
        rows.append(
            {
                "step": key,
                "name": either.name,
                "status_a": sa.status if sa else None,
                "status_b": sb.status if sb else None,
                "replayed_b": bool(sb and sb.replayed),
                "output_changed": _pretty(sa.output if sa else None)
                != _pretty(sb.output if sb else None),
                "duration_a": sa.duration if sa else None,
                "duration_b": sb.duration if sb else None,
                "tokens_a": tokens_a,
                "tokens_b": tokens_b,
                "cost_a": cost_a,
                "cost_b": cost_b,
            }
        )
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def _find(step: str, a: dict[str, Span], b: dict[str, Span]) -> str:
    """The step key ``step`` names: a step key of either run, or a component name with
    one step in them; ``ValueError`` naming the choices otherwise."""
    if step in a or step in b:
        return step
    keys = [k for k in [*a, *(k for k in b if k not in a)] if (a.get(k) or b[k]).name == step]
    if len(keys) == 1:
        return keys[0]
    if keys:
        raise ValueError(f"component {step!r} has {len(keys)} steps; name one: {', '.join(keys)}")
    names = sorted({s.name for s in [*a.values(), *b.values()]})
    raise ValueError(f"no step {step!r} in either run; components: {', '.join(names)}")


def diff_outputs(run_a: str | RunHandle, run_b: str | RunHandle, step: str) -> str:
    """A unified diff of the two runs' outputs of ``step`` (a step key, or a component
    name with a single step) as pretty JSON; empty when they are equal."""
    a, b = _steps(run_a), _steps(run_b)
    key = _find(step, a, b)
    ra, rb = _handle(run_a).run_id, _handle(run_b).run_id
    left = _pretty(a[key].output).splitlines() if key in a else []
    right = _pretty(b[key].output).splitlines() if key in b else []
    lines = difflib.unified_diff(left, right, f"{ra}:{key}", f"{rb}:{key}", lineterm="")
    return "\n".join(lines)
