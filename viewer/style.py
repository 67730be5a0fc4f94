"""Small HTML helpers shared by the pages (badges, escaping, numbers)."""

from __future__ import annotations

import html
import json
from typing import Any

import panel as pn

from aiflow_nb.trace import STATUS_COLORS

__all__ = [
    "CSS",
    "TABLE_CONFIG",
    "badge",
    "copy_button",
    "esc",
    "pre_json",
    "seconds",
    "use_css",
]

CSS = """
.aiflow-error {color: #b91c1c; font-weight: bold;}
.aiflow-unreachable {border: 1px solid #f59e0b; background: #fffbeb; color: #78350f;
  border-radius: 6px; padding: 4px 14px;}
.aiflow-unreachable .aiflow-reason {font-size: 12px; color: #92400e;}
.aiflow-waiting {color: #a16207; font-weight: bold;}
.aiflow-badge {padding: 1px 8px; border-radius: 9px; color: white; font-size: 12px;}
.aiflow-totals {display: flex; gap: 18px; flex-wrap: wrap; font-size: 14px;}
.aiflow-totals b {font-size: 16px;}
.aiflow-detail pre, .aiflow-live pre, pre.aiflow-live-text {background: #f6f8fa; padding: 6px;
  max-height: 260px;
  overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%;
  box-sizing: border-box; font-size: 12px; margin: 2px 0 8px 0;}
.aiflow-copy {font-size: 11px; padding: 0 6px; margin-left: 4px; cursor: pointer;}
.aiflow-tb-fold summary {cursor: pointer; color: #6b7280; font-size: 12px;}
.aiflow-publish td:first-child {white-space: nowrap;}
.aiflow-detail h4 {margin: 8px 0 2px 0;}
.aiflow-detail table {border-collapse: collapse; font-size: 12px;}
.aiflow-detail td, .aiflow-detail th {border: 1px solid #ddd; padding: 2px 6px;}
"""

TABLE_CONFIG = {"columnDefaults": {"minWidth": 72, "headerWordWrap": True}}
"""Tabulator options of the pages' tables: a narrow output (a notebook's) scrolls the
table sideways instead of cutting its column headers to one letter."""


def use_css(css: str = CSS) -> None:
    """Add ``css`` to the page-wide CSS (``pn.config.raw_css``) once; before a served
    page's HTML is answered for it to be in that page."""
    if css not in pn.config.raw_css:
        pn.config.raw_css = [*pn.config.raw_css, css]


def esc(value: Any) -> str:
    return html.escape(str(value))


def badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#9ca3af")
    return f'<span class="aiflow-badge" style="background:{color}">{esc(status)}</span>'


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def copy_button(text: str, what: str) -> str:
    """A small button that copies ``text`` to the clipboard (``what``: its tooltip)."""
    value = html.escape(json.dumps(text), quote=True)
    return (
        f'<button class="aiflow-copy" title="copy the {esc(what)}" data-copy="{esc(text)}" '
        f'onclick="navigator.clipboard.writeText({value});'
        "this.textContent='copied';setTimeout(()=>{this.textContent='copy'},1200)\">copy</button>"
    )


def pre_json(value: Any, limit: int = 20_000) -> str:
    """A JSON value pretty-printed in a <pre>, cut at ``limit`` characters."""
    import orjson

    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters)"
    return f"<pre>{esc(text)}</pre>"
