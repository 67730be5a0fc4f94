"""The runs page: a live Tabulator of runs, filterable by workflow, status and time, in
the namespace chosen in its selector (``?ns=NAME``; switched in place, the URL follows)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import HTMLTemplateFormatter, NumberFormatter

from aiflow_nb import defaults
from aiflow_nb.access.runs import namespaces
from aiflow_nb.config import namespace, use_namespace
from aiflow_nb.events.status import RECORDED
from aiflow_nb.trace import RUN_TABLE_COLUMNS, RunIndex

from .namespace import bound, href
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

NAMESPACES_SHOWN = 12
"""Other namespaces the runs page names at most."""

_INLINE_LINK = HTMLTemplateFormatter(template='<span class="aiflow-run-link"><%= value %></span>')
"""Inline, a run id is no link (it would navigate the notebook page): a click on the
cell opens the run in the view (``RunsPage.on_open``)."""


def _link() -> HTMLTemplateFormatter:
    """A run id as a link to its page (in the namespace in force)."""
    prefix = esc(href(run=""))  # ?run= or ?ns=NAME&amp;run=
    return HTMLTemplateFormatter(
        template=f'<a href="{prefix}<%= value %>" target="_self"><%= value %></a>'
    )


class RunsPage:
    """Every run of one namespace (the one in force when made; ``switch`` to change it),
    newest first; new runs and status changes appear without a reload."""

    def __init__(
        self, index: RunIndex | None = None, on_open: Callable[[str], None] | None = None
    ) -> None:
        """``on_open``: inline, called with the run id of a run cell clicked (run ids are
        then no links)."""
        if CSS not in pn.config.raw_css:
            pn.config.raw_css = [*pn.config.raw_css, CSS]
        self.ns = namespace()
        """The namespace listed (``switch``)."""
        self.on_open = on_open
        self.index = index or RunIndex(limit=defaults.VIEWER_RUNS_LIMIT)
        self.workflow = pn.widgets.Select(label="workflow", options=["any"], value="any", width=200)
        self.status = pn.widgets.Select(
            label="status",
            options=STATUSES,
            value="any",
            width=150,
            css_classes=["aiflow-status-select"],
        )
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
                "run_id": _link() if on_open is None else _INLINE_LINK,
                "duration": NumberFormatter(format="0.00"),
                "cost": NumberFormatter(format="$0.0000"),
            },
            titles={"run_id": "run", "duration": "duration (s)"},
            configuration=TABLE_CONFIG,
            theme=table_theme(),
        )
        if on_open is not None:
            self.table.on_click(self._on_click)
        for widget in (self.workflow, self.status, self.window):
            widget.param.watch(lambda _e: self.refresh(), "value")
        self.outage = pn.pane.HTML("", visible=False, sizing_mode="stretch_width")
        """Shown while Redis is unreachable (the table keeps what it last read)."""
        self._down_since: float | None = None
        known = namespaces()
        self.namespace = pn.pane.HTML(
            namespace_html(self.ns, known),
            sizing_mode="stretch_width",
            css_classes=["aiflow-namespace"],
        )
        self.ns_select = pn.widgets.Select(
            label="namespace",
            options=sorted({self.ns, *known}),
            value=self.ns,
            width=200,
            css_classes=["aiflow-ns-select"],
        )
        self.ns_select.param.watch(lambda e: self.switch(str(e.new)), "value")
        self.layout = pn.Column(
            "## aiflow-nb runs",
            self.namespace,
            self.outage,
            pn.Row(self.ns_select, self.workflow, self.status, self.window),
            self.table,
            sizing_mode="stretch_width",
        )
        self.refresh()

    def start(self) -> RunsPage:
        """Poll for new runs and status changes (in a served document or a notebook)."""
        pn.state.add_periodic_callback(self.poll, period=defaults.VIEWER_RUNS_POLL_MS)
        return self

    def switch(self, name: str) -> None:
        """List namespace ``name`` instead (in place; the page's URL becomes ``?ns=NAME``
        on the dashboard)."""
        if name == self.ns:
            return
        self.ns, self.index = name, RunIndex(limit=self.index.limit)
        with use_namespace(name):
            self.namespace.object = namespace_html(name, list(self.ns_select.options))
            if self.on_open is None:
                self.table.formatters = {**self.table.formatters, "run_id": _link()}
                if pn.state.location is not None:
                    pn.state.location.search = href()
        self.workflow.param.update(options=["any"], value="any")
        self.refresh()

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
        with use_namespace(self.ns):
            frame = self.index.refresh(**self.filters())
        self._remember_workflows(frame)
        if not _same(frame, self.table.value):
            self.table.value = frame

    def _on_click(self, event: Any) -> None:
        """Inline: open the run whose id was clicked (in this page's namespace)."""
        if event.column == "run_id" and event.value and self.on_open is not None:
            bound(self.on_open, self.ns)(str(event.value))

    def _remember_workflows(self, frame: pd.DataFrame) -> None:
        known = set(self.workflow.options) | {w for w in frame["workflow"] if w}
        options = ["any", *sorted(known - {"any"})]
        if options != self.workflow.options:
            self.workflow.options = options


def _same(a: pd.DataFrame, b: pd.DataFrame | None) -> bool:
    return b is not None and a.shape == b.shape and bool(a.equals(b))


def namespace_html(ns: str, known: list[str]) -> str:
    """Which namespace the page lists, and the others of ``known`` (those with runs in
    this Redis), with how to see one."""
    others = [n for n in known if n != ns]
    text = f"namespace <b>{esc(ns)}</b>"
    if others:
        names = ", ".join(f"<code>{esc(n)}</code>" for n in others[:NAMESPACES_SHOWN])
        if len(others) > NAMESPACES_SHOWN:
            names += f" and {len(others) - NAMESPACES_SHOWN} more"
        text += f" · other namespaces with runs: {names} (choose one under namespace)"
    return f"<div>{text}</div>"
