"""How a ``RunHandle`` shows itself in IPython: a live widget in a Jupyter kernel, else a
text/HTML snapshot (terminal IPython, nbconvert, nbval comparisons)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..errors import RunNotFound
from ..events.status import TERMINAL
from .render import render_html, render_text
from .state import RunState

if TYPE_CHECKING:
    from ..access.handle import RunHandle
    from .widget import RunWidget

__all__ = [
    "display_run",
    "mark_shown",
    "snapshot",
    "snapshot_html",
    "snapshot_text",
    "widgets_supported",
]


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()


def widgets_supported() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code), where widgets render."""
    shell = _shell()
    return shell is not None and getattr(shell, "kernel", None) is not None


def snapshot(handle: RunHandle) -> RunState:
    """The run as its events tell it right now (and why it waits, when it does)."""
    state = RunState(handle.run_id).apply_all(handle.events(follow=False))
    state.resolve_output(handle.client)
    if state.status not in TERMINAL:
        state.waiting = handle.waiting
    return state


def snapshot_text(handle: RunHandle) -> str:
    return render_text(snapshot(handle))


def snapshot_html(handle: RunHandle) -> str:
    try:
        return render_html(snapshot(handle))
    except RunNotFound:
        return f"<div>run <code>{html.escape(handle.run_id)}</code>: not found</div>"


def mark_shown(handle: RunHandle) -> None:
    """Remember that ``handle`` was displayed by the current cell (a magic showed it), so
    the same cell's result does not display it twice."""
    shell = _shell()
    if shell is not None:
        handle._aiflow_shown = shell.execution_count  # type: ignore[attr-defined]


def display_run(handle: RunHandle, live: bool | None = None) -> RunWidget | None:
    """Display ``handle``: a live ``RunWidget`` when widgets render here (or ``live``), else
    a snapshot. Returns the widget, if one was made."""
    from IPython.display import display as _display

    display = cast(Callable[..., None], _display)

    shell = _shell()
    if shell is not None and getattr(handle, "_aiflow_shown", None) == shell.execution_count:
        return None
    mark_shown(handle)
    if live if live is not None else widgets_supported():
        from .widget import RunWidget

        widget = RunWidget(handle).show()
        handle.widget = widget
        return widget
    state = snapshot(handle)
    display({"text/plain": render_text(state), "text/html": render_html(state)}, raw=True)
    return None
