"""What the dashboard's and the widget's actions bars share (``viewer/actions.py``,
``notebook/actions.py``: Panel and ipywidgets buttons): which buttons a run's status
enables, and how an action's outcome is said (a refusal as text, never a traceback)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from ..errors import AiflowError
from ..events.status import CANCELLABLE, RESUMABLE, TERMINAL

__all__ = ["ActionsLogic"]

_OK, _REFUSED = "#16a34a", "#dc2626"


class ActionsLogic:
    """Mixin over buttons ``cancel``, ``resume``, ``rerun`` (each with ``disabled``);
    a subclass shows or hides its confirmation (``_ask``) and a message (``_say``)."""

    cancel: Any
    resume: Any
    rerun: Any
    status: str = ""

    def update(self, status: str) -> None:
        """Enable the buttons whose action applies to ``status``."""
        self.status = status
        self.cancel.disabled = status not in CANCELLABLE
        if status not in CANCELLABLE:
            self._ask(False)
        self.resume.disabled = status not in RESUMABLE
        self.rerun.disabled = status not in TERMINAL

    def _ask(self, asking: bool) -> None:
        raise NotImplementedError

    def _say(self, html_text: str) -> None:
        raise NotImplementedError

    def _do(self, action: Callable[[], str]) -> None:
        """Run ``action`` (its text says what it did); an ``AiflowError`` is shown."""
        self._ask(False)
        try:
            said, color = action(), _OK
        except AiflowError as exc:
            said, color = str(exc), _REFUSED
        self._say(f'<span style="color:{color}">{html.escape(said)}</span>')
