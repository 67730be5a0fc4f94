"""The detail pane of one span (or one fan-out group) as HTML."""

from __future__ import annotations

import time
from typing import Any

from aiflow_nb.access.gaps import Gap
from aiflow_nb.access.spans import Span
from aiflow_nb.events.status import SpanStatus
from aiflow_nb.trace import SpanTree, TreeRow
from aiflow_nb.trace.totals import COST, INPUT_TOKENS, MODEL, OUTPUT_TOKENS

from .style import badge, esc, pre_json, seconds

__all__ = ["gap_html", "group_html", "span_html"]


def span_html(tree: SpanTree, span: Span, now: float | None = None) -> str:
    """Inputs, output, error with traceback, every attempt, markers, model, tokens, cost."""
    now = time.time() if now is None else now
    end = span.end if span.end is not None else now
    dur = None if span.start is None else end - span.start
    flags = tree.span_markers(span)
    parts = [
        f"<h3>{esc(span.name)} {badge(span.status)}</h3>",
        f"<div>span <code>{esc(span.span_id)}</code>"
        f"{' · step <code>' + esc(span.key) + '</code>' if span.key else ''}</div>",
        f"<div>duration <b>{seconds(dur)}</b>{' (running)' if span.end is None else ''}"
        f" · attempts <b>{span.attempts or (1 if span.start else 0)}</b>"
        f"{' · <b>' + esc(flags) + '</b>' if flags else ''}</div>",
    ]
    parts.append(_usage(span.attributes))
    if span.progress:
        p = span.progress
        parts.append(
            f"<div>progress {esc(p.get('done'))}/{esc(p.get('total'))} "
            f"{esc(p.get('message', ''))}</div>"
        )
    parts.append("<h4>inputs</h4>" + _value(span, "inputs"))
    if span.status == SpanStatus.COMPLETED or span.output is not None or "output" in span.refs:
        parts.append("<h4>output</h4>" + _value(span, "output"))
    if span.error:
        parts.append(_error(span.error, "error (fallback used)" if span.fallback else "error"))
    if span.retries:
        parts.append(_attempts(span.retries))
    if span.text:
        parts.append("<h4>streamed text</h4>" + f"<pre>{esc(span.text[-20_000:])}</pre>")
    extra = {
        k: v
        for k, v in span.attributes.items()
        if k not in (MODEL, INPUT_TOKENS, OUTPUT_TOKENS, COST)
    }
    if extra:
        parts.append("<h4>attributes</h4>" + pre_json(extra))
    logs = [entry for entry in tree.log if entry.get("span_id") == span.span_id]
    if logs:
        parts.append(
            "<h4>log</h4>"
            + "".join(
                f"<div>{esc(e.get('level', 'info'))}: {esc(e.get('message', ''))}</div>"
                for e in logs
            )
        )
    return '<div class="aiflow-detail">' + "".join(parts) + "</div>"


def _value(span: Span, name: str) -> str:
    """A span's inputs or output as JSON; one its events only previewed (a large value
    stored nowhere else, or not readable any more): its size and preview."""
    ref = span.refs.get(name)
    if ref is None:
        return pre_json(getattr(span, name))
    return (
        f"<div>{esc(ref.get('bytes'))} bytes of JSON; the start:</div>"
        f"<pre>{esc(ref.get('preview', ''))}…</pre>"
    )


def _usage(attributes: dict[str, Any]) -> str:
    model = attributes.get(MODEL)
    if not model and INPUT_TOKENS not in attributes and COST not in attributes:
        return ""
    bits = [
        f"model <b>{esc(model)}</b>" if model else "",
        f"tokens <b>{esc(attributes.get(INPUT_TOKENS, 0))}</b> in / "
        f"<b>{esc(attributes.get(OUTPUT_TOKENS, 0))}</b> out",
        f"cost <b>${float(attributes.get(COST) or 0):.6f}</b>",
    ]
    return "<div>" + " · ".join(b for b in bits if b) + "</div>"


def _error(err: dict[str, Any], title: str) -> str:
    head = f"{err.get('type')}: {err.get('message')}"
    cause = f" (cause: {err['cause']})" if err.get("cause") else ""
    tb = err.get("traceback")
    return f"<h4>{esc(title)}</h4><div><b>{esc(head)}</b>{esc(cause)}</div>" + (
        f"<pre>{esc(tb)}</pre>" if tb else ""
    )


def _attempts(retries: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(r.get('attempt'))}</td>"
        f"<td>{esc((r.get('error') or {}).get('type'))}: "
        f"{esc((r.get('error') or {}).get('message'))}</td>"
        f"<td>{seconds(r.get('wait'))}</td></tr>"
        for r in retries
    )
    return (
        "<h4>attempts that failed</h4><table><tr><th>attempt</th><th>error</th>"
        f"<th>wait before next</th></tr>{rows}</table>"
    )


def group_html(row: TreeRow) -> str:
    """A fan-out group: how many calls and in which states."""
    return (
        f'<div class="aiflow-detail"><h3>{esc(row.label)} {badge(row.status)}</h3>'
        f"<div>{esc(row.markers)}</div><div>span of the group: "
        f"<b>{seconds(row.duration)}</b></div><div>select one call to see its detail</div>"
        "</div>"
    )


def gap_html(gap: Gap, now: float | None = None) -> str:
    """A gap between two attempts: how long, from when, and why."""
    now = time.time() if now is None else now
    why = (
        "the run had failed; it was resumed later (not counted in its duration)"
        if gap.failed
        else "its worker was lost (crashed, stalled or handed the run back); the gap starts "
        "at the attempt's last event and counts in the run's duration"
    )
    until = "still waiting" if gap.end is None else f"until attempt {gap.attempt or '?'} started"
    return (
        f'<div class="aiflow-detail"><h3>{esc(gap.label)} {badge(SpanStatus.WAITING)}</h3>'
        f"<div><b>{seconds(gap.duration(now))}</b> · {esc(until)}</div>"
        f"<div>{esc(why)}</div></div>"
    )
