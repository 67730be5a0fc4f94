"""Dark mode: Panel themes a session by its ``theme`` query argument (``?theme=dark``);
the tables follow it.

Following the browser's ``prefers-color-scheme`` by reloading with ``?theme=dark`` from a
``document_ready`` CustomJS broke the wait form of a parked run's page (its
JSON editor never rendered), so it is not done.
"""

from __future__ import annotations

import panel as pn

__all__ = ["table_theme"]


def table_theme() -> str:
    """The Tabulator theme for this session's theme (Panel's dark theme leaves tables
    white)."""
    return "midnight" if pn.config.theme == "dark" else "simple"
