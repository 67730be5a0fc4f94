"""The inline views (``aiflow_nb.show``, ``%aiflow viewer``): Panel's notebook extension
with every resource inline, and the runs table and a run's page in one output.

``pn.extension()`` in a notebook loads BokehJS, Panel and Tabulator from CDNs by default,
so with no internet an inline view is blank. With ``inline=True`` the JavaScript and CSS
of the installed packages go into the output itself, run before the view's own output
renders, so the first display in a fresh kernel renders too. Links of the standalone
pages (``?run=ID``) would navigate the notebook page: inline, a run opens in the same
output, and a button goes back to the runs.
"""

from __future__ import annotations

from typing import Any

import panel as pn

from .run_page import RunPage
from .runs_page import RunsPage
from .style import esc

__all__ = ["EXTENSIONS", "InlineRunPage", "InlineViewer", "load_inline"]

EXTENSIONS = ("tabulator",)
"""The Panel extensions the pages use."""


def load_inline() -> None:
    """Load Panel's notebook extension with inline resources (each call publishes them
    again: a re-run cell, a new output area, a reloaded page all get them)."""
    pn.extension(*EXTENSIONS, inline=True)


class InlineRunPage(RunPage):
    """A run's page in a notebook output: no link back to ``?`` (the notebook page)."""

    back_link = ""


class InlineViewer:
    """The runs table; a click on a run id shows that run's live page in its place, with
    a button back to the (still live) table."""

    def __init__(self) -> None:
        self.runs = RunsPage(on_open=self.open).start()
        self.page: RunPage | None = None
        self.back = pn.widgets.Button(label="← all runs", color="light", width=110)
        self.back.on_click(lambda _e: self.close())
        self.layout = pn.Column(self.runs.layout, sizing_mode="stretch_width")

    def open(self, run_id: str) -> None:
        self.close()
        from aiflow_nb.errors import RunNotFound

        shown: Any
        try:
            self.page = InlineRunPage(run_id).start()
            shown = self.page.layout
        except RunNotFound:
            shown = pn.pane.HTML(f"<h2>run <code>{esc(run_id)}</code> not found</h2>")
        self.layout[:] = [self.back, shown]

    def close(self) -> None:
        if self.page is not None:
            self.page.stop()
            self.page = None
        self.layout[:] = [self.runs.layout]
