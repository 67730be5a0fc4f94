"""The detail pane of one span (or one fan-out group) as HTML."""

from __future__ import annotations

import time
from typing import Any

from aiflow_nb.access.gaps import Gap
from aiflow_nb.access.spans import Span
from aiflow_nb.events.status import SpanStatus
from aiflow_nb.trace import SpanTree, TreeRow
from aiflow_nb.trace.totals import COST, INPUT_TOKENS, MODEL, OUTPUT_TOKENS, money
from aiflow_nb.trace.tracebacks import fold
from aiflow_nb.trace.tree import Usage

from .style import badge, copy_button, esc, pre_json, seconds

__all__ = ["gap_html", "group_html", "progress_note", "publish_html", "span_html", "traceback_html"]


def span_html(tree: SpanTree, span: Span, now: float | None = None) -> str:
    """Inputs, output, error with traceback, every attempt, markers, model, tokens, cost."""
    now = time.time() if now is None else now
    end = span.end if span.end is not None else now
    dur = None if span.start is None else end - span.start
    flags = tree.span_markers(span)
    parts = [
        f"<h3>{esc(span.name)} {badge(span.status)}</h3>",
        f"<div>span <code>{esc(span.span_id)}</code>{copy_button(span.span_id, 'span id')}"
        f"{' · step <code>' + esc(span.key) + '</code>' if span.key else ''}</div>",
        f"<div>duration <b>{seconds(dur)}</b>{' (running)' if span.end is None else ''}"
        f" · attempts <b>{span.attempts or (1 if span.start else 0)}</b>"
        f"{' · <b>' + esc(flags) + '</b>' if flags else ''}</div>",
    ]
    parts.append(_usage(span.attributes, tree.rollup(span.span_id) if span.children else None))
    if span.progress:
        parts.append(f"<div>progress {progress_note(span.progress)}</div>")
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
    published = [p for p in tree.publishes if p.get("span_id") == span.span_id]
    if published:
        parts.append(publish_html(published, tree.t0))
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


def _usage(attributes: dict[str, Any], subtree: Usage | None = None) -> str:
    """The span's own model, tokens and cost; with ``subtree`` (a parent's roll-up) the
    totals of everything under it too."""
    model = attributes.get(MODEL)
    rolled = subtree is not None and (subtree.tokens or subtree.cost)
    own = bool(model) or INPUT_TOKENS in attributes or COST in attributes
    if not own and not rolled:
        return ""
    bits = [f"model <b>{esc(model)}</b>" if model else ""]
    if own:
        bits += [
            f"tokens <b>{esc(attributes.get(INPUT_TOKENS, 0))}</b> in / "
            f"<b>{esc(attributes.get(OUTPUT_TOKENS, 0))}</b> out",
            f"cost <b>{money(float(attributes.get(COST) or 0))}</b>",
        ]
    if rolled and subtree is not None:
        bits.append(
            f"with its sub-spans: tokens <b>{subtree.input_tokens}</b> in / "
            f"<b>{subtree.output_tokens}</b> out · cost <b>{money(subtree.cost)}</b>"
        )
    return '<div class="aiflow-usage">' + " · ".join(b for b in bits if b) + "</div>"


def _error(err: dict[str, Any], title: str) -> str:
    head = f"{err.get('type')}: {err.get('message')}"
    cause = f" (cause: {err['cause']})" if err.get("cause") else ""
    tb = err.get("traceback")
    return f"<h4>{esc(title)}</h4><div><b>{esc(head)}</b>{esc(cause)}</div>" + (
        traceback_html(tb) if tb else ""
    )


def traceback_html(text: str) -> str:
    """The traceback with runs of framework frames folded (a ``<details>`` to expand)."""
    out = []
    for seg in fold(text):
        if seg.folded:
            n = seg.frames
            out.append(
                f'<details class="aiflow-tb-fold"><summary>{n} framework frame'
                f"{'s' if n != 1 else ''}</summary>{esc(seg.text)}</details>"
            )
        else:
            out.append(esc(seg.text) + "\n")
    return '<pre class="aiflow-traceback">' + "".join(out) + "</pre>"


def publish_html(published: list[dict[str, Any]], t0: float | None) -> str:
    """``publish()`` events: when (seconds into the run), label, value."""
    rows = "".join(
        f"<tr><td>{seconds(p['ts'] - t0) if t0 is not None else ''}</td>"
        f"<td><b>{esc(p.get('label'))}</b></td><td>{pre_json(p.get('value'), 2000)}</td></tr>"
        for p in published[-200:]
    )
    return f'<h4>published</h4><table class="aiflow-publish">{rows}</table>'


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


def progress_note(p: dict[str, Any]) -> str:
    """``done/total`` and the message of a ``progress()`` event, as HTML."""
    done, total, message = p.get("done"), p.get("total"), p.get("message") or ""
    count = f"{_num(done)}/{_num(total)}" if total is not None else f"{_num(done)}"
    return f'<span class="aiflow-progress-note"><b>{esc(count)}</b> {esc(message)}</span>'


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def group_html(row: TreeRow) -> str:
    """A fan-out group: how many calls and in which states."""
    return (
        f'<div class="aiflow-detail"><h3>{esc(row.label)} {badge(row.status)}</h3>'
        f"<div>{esc(row.markers)}</div><div>span of the group: "
        f"<b>{seconds(row.duration)}</b> · tokens <b>{row.tokens}</b> · cost "
        f"<b>{money(row.cost)}</b></div><div>select one call to see its detail</div>"
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
