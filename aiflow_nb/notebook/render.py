"""Text and HTML renderings of a ``RunState`` (the widget's parts and the fallbacks).

Every function is pure: state in, string out. The tree is capped at
``defaults.WIDGET_MAX_SPANS`` rows so a run with thousands of spans stays cheap to draw.
"""

from __future__ import annotations

import html
import pprint
import time
from typing import Any

from .. import defaults
from ..access.gaps import Gap
from ..access.spans import INPUT_TOKENS, OUTPUT_TOKENS, Span
from ..events.status import SpanStatus
from ..trace.totals import money
from ..trace.tree import SpanTree
from .state import ProgressStream, RunState

__all__ = [
    "COLORS",
    "ICONS",
    "error_html",
    "gap_label",
    "header_html",
    "output_html",
    "progress_label",
    "render_html",
    "render_text",
    "row_label",
    "savings_label",
    "span_label",
    "stream_name",
    "streams_html",
    "tree_html",
    "wait_label",
]

COLORS = {
    "queued": "#6b7280",
    "running": "#2563eb",
    "completed": "#16a34a",
    "failed": "#dc2626",
    "cancelled": "#9333ea",
    "interrupted": "#f59e0b",
    "waiting": "#9ca3af",
    "unknown": "#6b7280",
}
ICONS = {
    "running": "…",
    "completed": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "interrupted": "↯",
    "waiting": "⏸",
}
_MONO = "font-family:var(--jp-code-font-family,monospace);font-size:12px"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f} s"


def _short(value: Any, limit: int = 2000) -> str:
    text = value if isinstance(value, str) else pprint.pformat(value, width=100)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more chars)"


def span_label(span: Span) -> str:
    """``✓ name  0.12 s  3 attempts [cached]`` (no indentation)."""
    parts = [f"{ICONS.get(span.status, '?')} {span.name}"]
    if span.duration is not None:
        parts.append(_seconds(span.duration))
    if span.attempts > 1:
        parts.append(f"{span.attempts} attempts")
    elif span.retries and span.status == SpanStatus.RUNNING:
        parts.append(f"retrying ({len(span.retries)})")
    parts += [f"[{_flag(span, m)}]" for m in ("cached", "replayed", "fallback") if getattr(span, m)]
    tokens = span.attributes.get(INPUT_TOKENS), span.attributes.get(OUTPUT_TOKENS)
    if tokens[1] is not None:
        parts.append(f"{tokens[0] or 0} → {tokens[1]} tokens")
    if span.error and span.status == SpanStatus.FAILED:
        parts.append(f"— {span.error.get('type')}: {span.error.get('message')}")
    return "  ".join(parts)


def _flag(span: Span, name: str) -> str:
    """A marker's text: ``replayed from <run id>`` for a rerun's replayed span."""
    return (
        f"replayed from {span.replayed_from}" if name == "replayed" and span.replayed_from else name
    )


def gap_label(gap: Gap, now: float | None = None) -> str:
    """``⏸ waiting for a worker  95.12 s``: the time between two attempts of a run."""
    return f"{ICONS['waiting']} {gap.label}  {_seconds(gap.duration(now or time.time()))}"


def row_label(item: Span | Gap, tree: SpanTree | None = None) -> str:
    """A row of ``RunState.tree()``: a span's label or a gap's; with ``tree``, a parent
    span also shows the tokens and cost of everything under it (``SpanTree.rollup``)."""
    if not isinstance(item, Span):
        return gap_label(item)
    label = span_label(item)
    usage = tree.rollup(item.span_id) if tree is not None and item.children else None
    if usage is not None and (usage.tokens or usage.cost):
        label += f"  Σ {usage.tokens} tokens · {money(usage.cost)}"
    return label


def _color(item: Span | Gap) -> str:
    status = item.status if isinstance(item, Span) else SpanStatus.WAITING
    return COLORS.get(status, COLORS["unknown"])


def stream_name(state: RunState, span_id: str) -> str:
    """``write_section › chat gpt-4o-mini``: a streaming span under its caller."""
    span = state.spans[span_id]
    parent = state.spans.get(span.parent_id) if span.parent_id else None
    return f"{parent.name} › {span.name}" if parent is not None else span.name


def progress_label(p: ProgressStream) -> str:
    done = f"{p.done:g}/{p.total:g}" if p.total is not None else f"{p.done:g}"
    return f"{p.name} {done} {p.message}".strip()


def _title(state: RunState) -> str:
    elapsed = state.elapsed()
    when = f" · {_seconds(elapsed)}" if elapsed is not None else ""
    if state.trace.gaps and state.waited() > 0:
        when += f" (waited {_seconds(state.waited())} for a worker)"
    resumed = f" · resumed {state.resumes}×" if state.resumes else ""
    saved = f" · {savings_label(state)}" if savings_label(state) else ""
    return f"run {state.run_id} · {state.workflow or '?'} · {state.status}{when}{resumed}{saved}"


def savings_label(state: RunState) -> str:
    """``replayed 3 steps (2 LLM calls), executed 2 · saved 180 tokens, $0.0001020``: what
    a replay (a resume's or a rerun's) did not pay for; empty when nothing replayed."""
    t = state.trace.totals
    if not t.steps_replayed:
        return ""
    llm = f" ({t.llm_replayed} LLM calls)" if t.llm_replayed else ""
    text = f"replayed {t.steps_replayed} steps{llm}, executed {t.executed}"
    if t.tokens_saved or t.cost_saved:
        text += f" · saved {t.tokens_saved} tokens, {money(t.cost_saved)}"
    return text


def wait_label(wait: dict[str, Any]) -> str:
    """``waits for input 'approve': Approve?`` (a parked run's open wait)."""
    what = "time" if wait.get("kind") == "sleep" else f"{wait.get('kind')} {wait.get('name')!r}"
    prompt = f": {wait['prompt']}" if wait.get("prompt") else ""
    return f"{ICONS['waiting']} waits for {what}{prompt}"


def render_text(state: RunState) -> str:
    """The whole run as plain text (the ``text/plain`` fallback)."""
    lines = [_title(state)]
    if state.waiting:
        lines.append(f"  waiting: {state.waiting}")
    if state.open_wait:
        lines.append(f"  {wait_label(state.open_wait)}")
    rows = state.tree()
    lines += [
        "  " * (depth + 1) + row_label(item, state.trace)
        for depth, item in rows[: defaults.WIDGET_MAX_SPANS]
    ]
    if len(rows) > defaults.WIDGET_MAX_SPANS:
        lines.append(f"  … {len(rows) - defaults.WIDGET_MAX_SPANS} more spans")
    lines += [f"  progress: {progress_label(p)}" for p in _recent_progress(state)]
    for span_id, text in state.text.items():
        lines.append(f"  {stream_name(state, span_id)}: {_short(text, 500)}")
    if state.error:
        lines.append(f"  error: {state.error.get('type')}: {state.error.get('message')}")
    if state.has_output:
        lines.append(f"  output: {_short(state.output, 500)}")
    return "\n".join(lines)


def _recent_progress(state: RunState) -> list[ProgressStream]:
    return list(state.progress.values())[-defaults.WIDGET_MAX_PROGRESS :]


def header_html(state: RunState) -> str:
    color = COLORS.get(state.status, COLORS["unknown"])
    badge = (
        f'<span style="background:{color};color:white;border-radius:4px;'
        f'padding:1px 6px;font-weight:600">{html.escape(state.status)}</span>'
    )
    elapsed = state.elapsed()
    bits = [
        f"<b>{html.escape(state.workflow or '?')}</b>",
        badge,
        f'<code style="{_MONO}">{html.escape(state.run_id)}</code>',
    ]
    if elapsed is not None:
        bits.append(f"<span>{_seconds(elapsed)}</span>")
    if state.trace.gaps and state.waited() > 0:
        bits.append(f"<span>waited {_seconds(state.waited())} for a worker</span>")
    if state.resumes:
        bits.append(f"<span>resumed {state.resumes}×</span>")
    if savings_label(state):
        bits.append(f"<span>{html.escape(savings_label(state))}</span>")
    note = ""
    if state.waiting:
        note = f'<div class="aiflow-run-waiting">⏸ {html.escape(state.waiting)}</div>'
    if state.open_wait:
        note += f'<div class="aiflow-run-waiting">{html.escape(wait_label(state.open_wait))}</div>'
    return '<div class="aiflow-run-header">' + " &nbsp; ".join(bits) + note + "</div>"


def tree_html(state: RunState) -> str:
    rows = state.tree()
    out = [f'<div class="aiflow-run-tree" style="{_MONO};line-height:1.35">']
    for depth, item in rows[: defaults.WIDGET_MAX_SPANS]:
        out.append(
            f'<div style="padding-left:{depth * 16}px;color:{_color(item)}">'
            f"{html.escape(row_label(item, state.trace))}</div>"
        )
    if len(rows) > defaults.WIDGET_MAX_SPANS:
        out.append(f"<div>… {len(rows) - defaults.WIDGET_MAX_SPANS} more spans</div>")
    return "".join(out) + "</div>"


def streams_html(state: RunState) -> str:
    """Streamed LLM text (``output.delta``), one block per span."""
    if not state.text:
        return ""
    blocks = [
        f"<div><b>{html.escape(stream_name(state, sid))}</b>"
        f'<pre style="white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre></div>'
        for sid, text in state.text.items()
    ]
    return '<div class="aiflow-run-streams">' + "".join(blocks) + "</div>"


def error_html(state: RunState) -> str:
    if not state.error:
        return ""
    err = state.error
    trace = html.escape(str(err.get("traceback") or ""))
    return (
        f'<div class="aiflow-run-error" style="color:{COLORS["failed"]}">'
        f"<b>{html.escape(str(err.get('type')))}: {html.escape(str(err.get('message')))}"
        f'</b><pre style="white-space:pre-wrap;{_MONO}">{trace}</pre></div>'
    )


def output_html(state: RunState) -> str:
    if not state.has_output:
        return ""
    return (
        f'<div class="aiflow-run-output"><b>output</b><pre style="white-space:pre-wrap;'
        f'{_MONO}">{html.escape(_short(state.output))}</pre></div>'
    )


def render_html(state: RunState) -> str:
    """The whole run as one HTML snapshot (the ``text/html`` fallback)."""
    bars = "".join(f"<div>{html.escape(progress_label(p))}</div>" for p in _recent_progress(state))
    parts = [
        header_html(state),
        tree_html(state),
        bars,
        streams_html(state),
        error_html(state),
        output_html(state),
    ]
    return '<div class="aiflow-run">' + "".join(parts) + "</div>"
