"""The run widget's actions: Cancel (asks to confirm first), Resume and Rerun, each
calling the ``RunHandle`` methods the CLI's commands call (``cancel``, ``resume``,
``rerun``). A button is enabled only while its action applies to the run's status
(``update(status)``, on every redraw); a refusal (``AiflowError``, e.g. ``RunStateError``)
is shown beside the buttons, never as a traceback. The dashboard has the same bar
(``viewer/actions.py``)."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from ..access.handle import RunHandle
from ..trace.actions import ActionsLogic

__all__ = ["ActionsBar"]


class ActionsBar(ActionsLogic, widgets.HBox):  # type: ignore[misc]
    """Buttons acting on ``handle``'s run; ``opened`` gets a rerun's handle, to show it;
    ``resumed`` is called once a resume was queued (to follow the run again)."""

    def __init__(
        self,
        handle: RunHandle,
        opened: Callable[[RunHandle], None] | None = None,
        resumed: Callable[[], None] | None = None,
    ) -> None:
        self.handle, self.opened, self.resumed = handle, opened, resumed
        self.message = widgets.HTML()
        self.cancel = widgets.Button(description="Cancel", tooltip="cancel the run")
        self.confirm = widgets.Button(description="Yes, cancel the run", button_style="danger")
        self.keep = widgets.Button(description="Keep it")
        self.resume = widgets.Button(description="Resume", tooltip="resume the failed run")
        self.rerun = widgets.Button(description="Rerun", tooltip="rerun what changed")
        self.cancel.on_click(lambda _b: self._ask(True))
        self.keep.on_click(lambda _b: self._ask(False))
        self.confirm.on_click(lambda _b: self._do(self._cancel))
        self.resume.on_click(lambda _b: self._do(self._resume))
        self.rerun.on_click(lambda _b: self._do(self._rerun))
        super().__init__(
            children=[self.cancel, self.confirm, self.keep, self.resume, self.rerun, self.message]
        )
        self.add_class("aiflow-actions")
        self.update("")

    def _ask(self, asking: bool) -> None:
        shown = "inline-flex" if asking else "none"
        self.confirm.layout.display = self.keep.layout.display = shown

    def _cancel(self) -> str:
        return f"cancel: {self.handle.cancel()}"

    def _resume(self) -> str:
        self.handle.resume()
        if self.resumed is not None:
            self.resumed()
        return "queued for resumption"

    def _rerun(self) -> str:
        new = self.handle.rerun()
        if self.opened is not None:
            self.opened(new)
        return f"rerun: new run {new.run_id}"

    def _say(self, html_text: str) -> None:
        self.message.value = html_text
