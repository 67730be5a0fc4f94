"""Browser-side help for the span tree: arrow keys and Enter sent to Python, and
scrolling the table to a row (a deep-linked span, a row chosen by keyboard).

One small ``ReactiveHTML`` per run page: its render script listens for keys on the
document (not while typing in an input) and sends ``up``/``down``/``left``/``right``/
``enter`` in ``key`` as ``N|k1,k2,...``: how many keys so far and the last 50, so keys
pressed faster than the server reads them (changes it receives merged) are not lost:
``new_keys`` gives those not seen yet. Setting
``row`` scrolls the Tabulator whose CSS class is ``aiflow-span-tree`` to that row.
"""

from __future__ import annotations

import param
from panel.reactive import ReactiveHTML

__all__ = ["TREE_CLASS", "TreeKeys"]

TREE_CLASS = "aiflow-span-tree"

_SCROLL = """
const table = () => Bokeh.index.query_one(
  (v) => v.tabulator !== undefined && v.model.css_classes.includes('TREE_CLASS'));
const go = (tries) => {
  const t = table(), i = data.row;
  if (i < 0) return;
  const rows = t && t.tabulator ? t.tabulator.getRows('active') : [];
  if (rows.length > i) {
    rows[i].scrollTo('center', false).catch(() => {});
  } else if (tries > 0) {
    setTimeout(() => go(tries - 1), 150);
  }
};
setTimeout(() => go(40), 60);
""".replace("TREE_CLASS", TREE_CLASS)

_KEYS = """
const names = {ArrowDown: 'down', ArrowUp: 'up', ArrowLeft: 'left', ArrowRight: 'right',
               Enter: 'enter'};
if (window.__aiflowTreeKeys) document.removeEventListener('keydown', window.__aiflowTreeKeys);
let n = 0;
const log = [];
window.__aiflowTreeKeys = (ev) => {
  const k = names[ev.key];
  const target = ev.composedPath()[0];
  const tag = ((target && target.tagName) || '').toLowerCase();
  if (!k || ['input', 'textarea', 'select', 'button'].includes(tag)) return;
  ev.preventDefault();
  n += 1;
  log.push(k);
  if (log.length > 50) log.shift();
  data.key = n + '|' + log.join(',');
};
document.addEventListener('keydown', window.__aiflowTreeKeys);
"""


class TreeKeys(ReactiveHTML):
    """Keys pressed on the page (``key``: ``7|down,down,enter``) and the row to scroll to."""

    key = param.String(default="")
    row = param.Integer(default=-1)

    _template = '<div id="keys" style="display: none"></div>'
    _scripts = {"render": _KEYS + _SCROLL, "row": _SCROLL}

    def __init__(self, **params: object) -> None:
        super().__init__(**params)  # type: ignore[no-untyped-call]
        self._seen = 0

    def new_keys(self, value: str) -> list[str]:
        """The keys in ``value`` (a ``key``) pressed since the last call."""
        count, _, keys = value.partition("|")
        if not count.isdigit():
            return []
        n, pressed = int(count), [k for k in keys.split(",") if k]
        fresh = n - self._seen if n >= self._seen else n  # a re-render counts from 0
        self._seen = n
        return pressed[-fresh:] if fresh > 0 else []
