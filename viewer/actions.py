"""The run page's actions bar: Cancel (asks to confirm first), Resume and Rerun, each
calling the Python API the CLI uses (``ops.submit.cancel``, ``aiflow_nb.access.start.resume``,
``aiflow_nb.access.rerun.rerun``). A button is enabled only while its action applies to
the run's status (``update(status)``, called on every redraw); a refusal (e.g.
``RunStateError``) is shown in the bar, never as a traceback."""

from __future__ import annotations

from collections.abc import Callable

import panel as pn

from aiflow_nb.access.rerun import rerun
from aiflow_nb.access.start import resume
from aiflow_nb.ops.submit import cancel
from aiflow_nb.trace.actions import ActionsLogic

from .namespace import bound

__all__ = ["ActionsBar"]


class ActionsBar(ActionsLogic):
    """Buttons acting on run ``run_id``; ``opened`` is called with a rerun's new id."""

    def __init__(self, run_id: str, opened: Callable[[str], None] | None = None) -> None:
        self.run_id, self.opened = run_id, opened
        self.message = pn.pane.HTML("", css_classes=["aiflow-action-status"])
        self.cancel = pn.widgets.Button(label="Cancel", width=90)
        self.confirm = pn.widgets.Button(label="Yes, cancel the run", visible=False, width=170)
        self.keep = pn.widgets.Button(label="Keep it", visible=False, width=90)
        self.resume = pn.widgets.Button(label="Resume", width=90)
        self.rerun = pn.widgets.Button(label="Rerun", width=90)
        self.cancel.on_click(lambda _e: self._ask(True))
        self.keep.on_click(lambda _e: self._ask(False))
        # in the namespace in force now (the run's): clicks come later, on the server's loop
        self.confirm.on_click(bound(lambda _e: self._do(lambda: f"cancel: {cancel(self.run_id)}")))
        self.resume.on_click(bound(lambda _e: self._do(self._resume)))
        self.rerun.on_click(bound(lambda _e: self._do(self._rerun)))
        self.layout = pn.Row(
            self.cancel, self.confirm, self.keep, self.resume, self.rerun, self.message,
            name="actions", css_classes=["aiflow-actions"],
        )  # fmt: skip
        self.update("")

    def _ask(self, asking: bool) -> None:
        self.confirm.visible = self.keep.visible = asking

    def _resume(self) -> str:
        resume(self.run_id)
        return "queued for resumption"

    def _rerun(self) -> str:
        new = rerun(self.run_id).run_id
        if self.opened is not None:
            self.opened(new)
        return f"rerun: new run {new}"

    def _say(self, html_text: str) -> None:
        self.message.object = html_text
