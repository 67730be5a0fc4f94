"""The runs page: a live Tabulator of runs, filterable by workflow, status and time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import HTMLTemplateFormatter, NumberFormatter

from aiflow_nb import defaults
from aiflow_nb.access.runs import namespaces
from aiflow_nb.config import settings
from aiflow_nb.events.status import RECORDED
from aiflow_nb.trace import RUN_TABLE_COLUMNS, RunIndex

from .style import CSS, TABLE_CONFIG, esc
from .theme import table_theme
from .unreachable import UNREACHABLE, unreachable_html

__all__ = ["NAMESPACES_SHOWN", "STATUSES", "WINDOWS", "RunsPage", "namespace_html"]

STATUSES = ["any", *RECORDED]
WINDOWS = {
    "any time": None,
    "last 15 minutes": 900.0,
    "last hour": 3600.0,
    "last day": 86400.0,
    "last week": 7 * 86400.0,
}
"""Time filter choices: label -> seconds back from now."""

_LINK = HTMLTemplateFormatter(
    template='<a href="?run=<%= value %>" target="_self"><%= value %></a>'
)
NAMESPACES_SHOWN = 12
"""Other namespaces the runs page names at most."""

_INLINE_LINK = HTMLTemplateFormatter(template='<span class="aiflow-run-link"><%= value %></span>')
"""Inline, a run id is no link (it would navigate the notebook page): a click on the
cell opens the run in the view (``RunsPage.on_open``)."""


class RunsPage:
    """Every run, newest first; new runs and status changes appear without a reload."""

    def __init__(
        self, index: RunIndex | None = None, on_open: Callable[[str], None] | None = None
    ) -> None:
        """``on_open``: inline, called with the run id of a run cell clicked (run ids are
        then no links)."""
        if CSS not in pn.config.raw_css:
            pn.config.raw_css = [*pn.config.raw_css, CSS]
        self.index = index or RunIndex(limit=defaults.VIEWER_RUNS_LIMIT)
        self.workflow = pn.widgets.Select(label="workflow", options=["any"], value="any", width=200)
        self.status = pn.widgets.Select(label="status", options=STATUSES, value="any", width=150)
        self.window = pn.widgets.Select(label="started", options=list(WINDOWS), width=170)
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=RUN_TABLE_COLUMNS),
            show_index=False,
            disabled=True,
            selectable=False,
            sizing_mode="stretch_width",
            height=600,
            layout="fit_data_stretch",
            formatters={
                "run_id": _LINK if on_open is None else _INLINE_LINK,
                "duration": NumberFormatter(format="0.00"),
                "cost": NumberFormatter(format="$0.0000"),
            },
            titles={"run_id": "run", "duration": "duration (s)"},
            configuration=TABLE_CONFIG,
            theme=table_theme(),
        )
        if on_open is not None:
            self.table.on_click(
                lambda e: on_open(str(e.value)) if e.column == "run_id" and e.value else None
            )
        for widget in (self.workflow, self.status, self.window):
            widget.param.watch(lambda _e: self.refresh(), "value")
        self.outage = pn.pane.HTML("", visible=False, sizing_mode="stretch_width")
        """Shown while Redis is unreachable (the table keeps what it last read)."""
        self._down_since: float | None = None
        self.namespace = pn.pane.HTML(
            namespace_html(), sizing_mode="stretch_width", css_classes=["aiflow-namespace"]
        )
        self.layout = pn.Column(
            "## aiflow-nb runs",
            self.namespace,
            self.outage,
            pn.Row(self.workflow, self.status, self.window),
            self.table,
            sizing_mode="stretch_width",
        )
        self.refresh()

    def start(self) -> RunsPage:
        """Poll for new runs and status changes (in a served document or a notebook)."""
        pn.state.add_periodic_callback(self.poll, period=defaults.VIEWER_RUNS_POLL_MS)
        return self

    def poll(self) -> None:
        """``refresh``, living through Redis outages: while Redis is unreachable the page
        says so above the table (last read), and goes on once Redis answers."""
        try:
            self.refresh()
        except UNREACHABLE as exc:
            self._down_since = self._down_since or time.time()
            self.outage.object = unreachable_html(exc, self._down_since)
            self.outage.visible = True
            return
        if self._down_since is not None:
            self._down_since = None
            self.outage.visible = False

    def filters(self) -> dict[str, Any]:
        back = WINDOWS[self.window.value]
        return {
            "workflow": None if self.workflow.value == "any" else self.workflow.value,
            "status": None if self.status.value == "any" else self.status.value,
            "since": None if back is None else time.time() - back,
        }

    def refresh(self) -> None:
        frame = self.index.refresh(**self.filters())
        self._remember_workflows(frame)
        if not _same(frame, self.table.value):
            self.table.value = frame

    def _remember_workflows(self, frame: pd.DataFrame) -> None:
        known = set(self.workflow.options) | {w for w in frame["workflow"] if w}
        options = ["any", *sorted(known - {"any"})]
        if options != self.workflow.options:
            self.workflow.options = options


def _same(a: pd.DataFrame, b: pd.DataFrame | None) -> bool:
    return b is not None and a.shape == b.shape and bool(a.equals(b))


def namespace_html() -> str:
    """Which namespace the page lists, and the others with runs in this Redis (with how
    to see them: the viewer lists one namespace, ``AIFLOW_NAMESPACE``)."""
    ns = settings().namespace
    others = [n for n in namespaces() if n != ns]
    text = f"namespace <b>{esc(ns)}</b>"
    if others:
        names = ", ".join(f"<code>{esc(n)}</code>" for n in others[:NAMESPACES_SHOWN])
        if len(others) > NAMESPACES_SHOWN:
            names += f" and {len(others) - NAMESPACES_SHOWN} more"
        text += (
            f" · other namespaces with runs: {names} (to see one: "
            "<code>AIFLOW_NAMESPACE=NAME aiflow viewer</code>)"
        )
    return f"<div>{text}</div>"
