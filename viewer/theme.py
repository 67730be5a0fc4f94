"""Dark mode: the dashboard follows the browser's ``prefers-color-scheme``, with no
reload; ``?theme=dark`` / ``?theme=light`` override it.

Panel colours every component from CSS variables set in each component's shadow root
by its theme's stylesheet. With no ``?theme``, a session's design is ``AutoNative``:
Panel's own design plus, after the light theme's stylesheet, Panel's dark variables
inside ``@media (prefers-color-scheme: dark)``, so the page is dark as soon as it
renders, and turns when the browser does. What CSS cannot reach, the tables'
Tabulator theme and the Bokeh timeline, follows the browser's ``dark_mode`` as Panel's
``BrowserInfo`` reports it (``follow_browser``). ``?theme=dark`` is Panel's own dark
theme, ``?theme=light`` its light one, whatever the browser prefers.

(A first version reloaded the page with ``?theme=dark`` from a ``document_ready``
callback; that broke a parked run's wait form, so nothing here reloads.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import panel as pn
from panel.theme import Inherit, Native
from panel.theme.base import BOKEH_DARK, THEME_CSS
from panel.viewable import Viewable

__all__ = ["AUTO_CSS", "AutoNative", "apply_theme", "follow_browser", "label_color", "table_theme"]

_OWN_DARK = """
.aiflow-detail pre, .aiflow-live pre, pre.aiflow-live-text, .aiflow-diff pre
  {background: #2b3035 !important; color: #e5e7eb !important;}
.aiflow-detail td, .aiflow-detail th, .aiflow-compare td, .aiflow-compare th
  {border-color: #3a3f44;}
.aiflow-compare th.aiflow-side {background: #2b3035;}
.aiflow-compare tr.aiflow-changed td {background: #3f3305;}
.aiflow-unreachable {background: #332701; color: #ffda6a;}
a {color: #6ea8fe;}
"""
"""The pages' own colours (style.CSS) in the dark."""

AUTO_CSS = (
    "@media (prefers-color-scheme: dark) {\n"
    + (Path(THEME_CSS) / "dark.css").read_text(encoding="utf-8")
    + _OWN_DARK
    + "body {background-color: var(--panel-background-color); "
    "color: var(--panel-on-background-color);}\n}\n"
)
"""Panel's dark theme variables (and the pages' own dark colours), in force only while
the browser prefers dark."""


class AutoNative(Native):
    """Panel's native design, dark while the browser prefers dark (``AUTO_CSS`` in every
    component, after the light theme's variables)."""

    modifiers = {Viewable: {"stylesheets": [Inherit, AUTO_CSS]}}


def _theme_arg() -> str:
    args = pn.state.session_args or {}
    return (args.get("theme") or [b""])[0].decode(errors="replace").strip().lower()


def apply_theme() -> None:
    """Choose this session's design from ``?theme`` (call before building the page):
    none -> follow the browser; ``dark`` / ``light`` -> that one."""
    theme = _theme_arg()
    if theme == "dark":
        return  # Panel's per-session dark theme, from the same query argument
    pn.config.design = Native if theme == "light" else AutoNative
    if theme != "light" and AUTO_CSS not in pn.config.global_css:
        pn.config.global_css = [*pn.config.global_css, AUTO_CSS]


def _following() -> bool:
    return pn.config.design is AutoNative


def _browser_dark() -> bool:
    info = pn.state.browser_info
    return bool(_following() and info is not None and info.dark_mode)


def table_theme() -> str:
    """The Tabulator theme for this session (Panel's dark theme leaves tables white):
    ``midnight`` when dark (``?theme=dark``, or the browser prefers it)."""
    return "midnight" if pn.config.theme == "dark" or _browser_dark() else "simple"


def label_color(dark: bool | None = None) -> str:
    """The timeline's span names: dark text, light in the dark (default: this session's
    theme as known now)."""
    dark = table_theme() == "midnight" if dark is None else dark
    return "#e5e7eb" if dark else "#111827"


def follow_browser(page: Any) -> None:
    """Keep ``page``'s tables and Bokeh figures in step with the browser's dark mode
    (only while the session follows the browser: no ``?theme``)."""
    info, doc = pn.state.browser_info, pn.state.curdoc
    if not _following() or info is None or doc is None:
        return
    from bokeh.themes import Theme

    def update(*_: Any) -> None:
        dark = bool(info.dark_mode)
        for table in page.select(pn.widgets.Tabulator):
            table.theme = "midnight" if dark else "simple"
        for pane in page.select(pn.pane.Bokeh):
            for labels in pane.object.select(name="labels"):
                labels.glyph.text_color = label_color(dark)
        doc.theme = Theme(json=BOKEH_DARK) if dark else None

    info.param.watch(update, "dark_mode")
    if info.dark_mode is not None:
        update()
