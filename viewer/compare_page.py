"""The compare page, ``/?compare=A,B``: two runs' steps side by side, aligned by step key
(``aiflow_nb.compare``), changed outputs highlighted, and the text diff of the selected
step (``aiflow_nb.diff_outputs``). A reader only, drawn once (finished runs)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from aiflow_nb.access.compare import compare, diff_outputs
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.errors import RunNotFound

from .namespace import bound, href
from .style import CSS, badge, esc, seconds

__all__ = ["COMPARE_CSS", "ComparePage", "compare_ids", "compare_page", "diff_html", "rows_html"]

COMPARE_CSS = """
.aiflow-compare table {border-collapse: collapse; font-size: 13px; width: 100%;}
.aiflow-compare td, .aiflow-compare th {border: 1px solid #ddd; padding: 3px 8px;}
.aiflow-compare th.aiflow-side {background: #f3f4f6;}
.aiflow-compare tr.aiflow-changed td {background: #fef3c7;}
.aiflow-compare td.aiflow-gap {border: none; width: 12px;}
.aiflow-diff pre {background: #f6f8fa; padding: 6px; font-size: 12px; white-space: pre-wrap;
  overflow-wrap: anywhere; max-height: 420px; overflow: auto;}
.aiflow-diff .add {color: #166534; background: #dcfce7;}
.aiflow-diff .del {color: #991b1b; background: #fee2e2;}
"""


def compare_ids(arg: str) -> tuple[str, str] | str:
    """``"A,B"`` -> the two run ids, else a sentence saying what is wrong."""
    ids = [part.strip() for part in arg.split(",")]
    if len(ids) != 2 or not all(ids):
        return f"compare takes two run ids, ?compare=A,B; got {arg!r}"
    return ids[0], ids[1]


def _indent(step: str) -> int:
    return step.count("/")  # ``wf`` is the root, ``wf/b#0`` its child


def _side(status: Any, duration: Any, note: str = "") -> str:
    if status is None or pd.isna(status):
        return '<td colspan="2"><i>not in this run</i></td>'
    dur = None if duration is None or pd.isna(duration) else float(duration)
    return f"<td>{badge(str(status))}{note}</td><td>{seconds(dur)}</td>"


def rows_html(frame: pd.DataFrame, run_a: str, run_b: str) -> str:
    """Both runs' steps as one table, a row per step key; a changed output's row is
    highlighted (class ``aiflow-changed``)."""
    head = (
        '<tr><th rowspan="2">step</th>'
        f'<th class="aiflow-side" colspan="2">A <code>{esc(run_a)}</code></th>'
        '<td class="aiflow-gap"></td>'
        f'<th class="aiflow-side" colspan="2">B <code>{esc(run_b)}</code></th>'
        "<th rowspan='2'>output</th></tr>"
        "<tr><th>status</th><th>duration</th><td class='aiflow-gap'></td>"
        "<th>status</th><th>duration</th></tr>"
    )
    body = []
    for row in frame.itertuples(index=False):
        changed = bool(row.output_changed)
        note = f" <small>replayed from {esc(run_a)}</small>" if row.replayed_b else ""
        pad = "&nbsp;" * 4 * _indent(str(row.step))
        body.append(
            f'<tr class="{"aiflow-changed" if changed else "aiflow-same"}" '
            f'data-step="{esc(row.step)}">'
            f'<td title="{esc(row.step)}">{pad}{esc(row.name)}</td>'
            f"{_side(row.status_a, row.duration_a)}<td class='aiflow-gap'></td>"
            f"{_side(row.status_b, row.duration_b, note)}"
            f"<td>{'<b>changed</b>' if changed else 'same'}</td></tr>"
        )
    return f'<div class="aiflow-compare"><table>{head}{"".join(body)}</table></div>'


def diff_html(diff: str, step: str) -> str:
    """A unified diff with its added and removed lines coloured; says so when equal."""
    if not diff:
        return (
            f'<div class="aiflow-diff"><p>outputs of <code>{esc(step)}</code> are equal</p></div>'
        )
    lines = []
    for line in diff.splitlines():
        kind = (
            "add"
            if line.startswith("+") and not line.startswith("+++")
            else "del"
            if line.startswith("-") and not line.startswith("---")
            else ""
        )
        lines.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
    return f'<div class="aiflow-diff"><pre>{chr(10).join(lines)}</pre></div>'


def _first_change(changed: list[str], steps: list[str]) -> str | None:
    """The step whose diff the page opens with: the first changed step under the root
    (where a change starts), else the first changed, else the first step."""
    inner = [s for s in changed if "/" in s]
    first = inner or changed or steps
    return first[0] if first else None


class ComparePage:
    """The page of two runs; ``RunNotFound`` for an unknown id."""

    def __init__(self, run_a: str, run_b: str) -> None:
        for css in (CSS, COMPARE_CSS):  # as the run page: each pane's shadow root gets it
            if css not in pn.config.raw_css:
                pn.config.raw_css = [*pn.config.raw_css, css]
        for run_id in (run_a, run_b):
            RunHandle(run_id).record()  # RunNotFound before anything is drawn
        self.run_a, self.run_b = run_a, run_b
        self.frame = compare(run_a, run_b)
        steps = [str(s) for s in self.frame["step"]]
        changed = [str(s) for s in self.frame[self.frame.output_changed]["step"]]
        self.select = pn.widgets.Select(
            label="diff of step", options=steps, value=_first_change(changed, steps)
        )
        self.diff = pn.pane.HTML(self._diff(self.select.value), sizing_mode="stretch_width")
        self.select.param.watch(bound(self._on_step), "value")
        n = len(changed)
        title = (
            f'<h2>compare <a href="{esc(href(run=run_a))}">{esc(run_a)}</a> → '
            f'<a href="{esc(href(run=run_b))}">{esc(run_b)}</a></h2>'
            f"<p>{len(steps)} steps; {n} output{'s' if n != 1 else ''} changed · "
            f'<a href="{esc(href())}">← all runs</a></p>'
        )
        self.layout = pn.Column(
            pn.pane.HTML(title, sizing_mode="stretch_width"),
            pn.pane.HTML(rows_html(self.frame, run_a, run_b), sizing_mode="stretch_width"),
            self.select,
            self.diff,
            sizing_mode="stretch_width",
        )

    def _on_step(self, event: Any) -> None:
        self.diff.object = self._diff(event.new)

    def _diff(self, step: str | None) -> str:
        if step is None:
            return "<p>no steps to diff</p>"
        return diff_html(diff_outputs(self.run_a, self.run_b, step), step)


def compare_page(arg: str) -> pn.viewable.Viewable:
    """The compare page for ``?compare=ARG``, or a message saying why there is none."""
    ids = compare_ids(arg)
    if isinstance(ids, str):
        return pn.pane.HTML(
            f'<h2>cannot compare</h2><p>{esc(ids)}</p><a href="{esc(href())}">← all runs</a>'
        )
    try:
        return ComparePage(*ids).layout
    except RunNotFound as exc:
        return pn.pane.HTML(
            f'<h2>cannot compare</h2><p>{esc(exc)}</p><a href="{esc(href())}">← all runs</a>'
        )
