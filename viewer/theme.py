"""Dark mode following the browser: Panel themes a session by its ``theme`` query
argument (``?theme=dark``); a page opened without one in a browser that prefers dark
(``prefers-color-scheme``) loads itself again with it, once, on document ready."""

from __future__ import annotations

import panel as pn
from bokeh.models import CustomJS

__all__ = ["FOLLOW_BROWSER_JS", "follow_browser_theme", "table_theme"]

FOLLOW_BROWSER_JS = """
const url = new URL(window.location.href);
if (!url.searchParams.has('theme') && window.matchMedia
    && window.matchMedia('(prefers-color-scheme: dark)').matches) {
  url.searchParams.set('theme', 'dark');
  window.location.replace(url.toString());
}
"""


def follow_browser_theme() -> None:
    """In a served session: switch to the dark theme when the browser prefers it."""
    doc = pn.state.curdoc
    if doc is not None and not (pn.state.session_args or {}).get("theme"):
        doc.js_on_event("document_ready", CustomJS(code=FOLLOW_BROWSER_JS))


def table_theme() -> str:
    """The Tabulator theme for this session's theme (Panel's dark theme leaves tables
    white)."""
    return "midnight" if pn.config.theme == "dark" else "simple"
