"""The waterfall timeline: a Bokeh figure over a ``ColumnDataSource`` of span bars.

Bars of running spans end at "now" and are redrawn as time passes, so they grow on
screen instead of appearing only when the span ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Range1d
from bokeh.plotting import figure

from aiflow_nb.trace.timeline import PUBLISH_COLUMNS, TIMELINE_COLUMNS

from .theme import label_color

__all__ = ["LATE", "VISIBLE_ROWS", "Waterfall"]

VISIBLE_ROWS = 30
"""Bars shown at once; pan or zoom the y axis to see more."""

LATE = 0.6
"""A bar starting after this fraction of the timeline gets its name before it."""

_NUMERIC = {"y": np.int32, "left": np.float64, "right": np.float64, "duration": np.float64}
"""Bar columns sent as typed arrays (binary buffers, not JSON lists: a 2,000-span run's
bars serialise and decode several times faster)."""

_SERVER_ONLY = ("span_id",)
"""Bar columns kept in Python only (a tapped bar's span is looked up here)."""


_LABELS_JS = """
const lo = Math.min(yr.start, yr.end) - 1, hi = Math.max(yr.start, yr.end) + 1;
const d = bars.data, get = (k) => (d instanceof Map ? d.get(k) : d[k]);
const ys = get("y"), lefts = get("left"), rights = get("right"), names = get("label");
let late = 0;
for (let i = 0; i < rights.length; i++) late = Math.max(late, rights[i]);
late *= LATE;
const out = {left: [], y: [], label: [], align: [], offset: []};
for (let i = 0; i < ys.length; i++) {
  if (ys[i] >= lo && ys[i] <= hi) {
    const after = lefts[i] > late;
    out.left.push(lefts[i]); out.y.push(ys[i]); out.label.push(names[i]);
    out.align.push(after ? "right" : "left"); out.offset.push(after ? -4 : 4);
  }
}
labels.data = out;
""".replace("LATE", str(LATE))
"""Browser-side: show the names of the bars in view only (drawing 2,000 labels is slow);
a bar that starts late (after ``LATE`` of the run) has its name before it, right-aligned."""


class Waterfall:
    """A figure and its source; ``update(columns)`` replaces the bars.

    Span names are drawn as text at the start of their bars (before it, for bars that start
    late), and only for the rows in view: a browser-side callback refills the label source
    when the view pans or the bars change (2,000 drawn labels cost seconds).
    """

    def __init__(self, height: int = 420) -> None:
        self.y_range = Range1d(start=VISIBLE_ROWS - 0.5, end=-0.5)
        self.source = ColumnDataSource(
            {c: [] for c in TIMELINE_COLUMNS if c not in _SERVER_ONLY} | {"alpha": []}
        )
        self.figure = figure(
            height=height,
            sizing_mode="stretch_width",
            y_range=self.y_range,
            x_axis_label="seconds since the run started",
            tools="xpan,ypan,xwheel_zoom,ywheel_zoom,tap,reset",
            active_scroll="ywheel_zoom",
            toolbar_location="above",
        )
        bars = self.figure.hbar(
            y="y",
            left="left",
            right="right",
            height=0.72,
            color="color",
            fill_alpha="alpha",
            source=self.source,
            name="bars",
        )
        self.labels = ColumnDataSource(
            {"left": [], "y": [], "label": [], "align": [], "offset": []}, name="label_source"
        )
        self.figure.text(
            x="left",
            y="y",
            text="label",
            source=self.labels,
            x_offset="offset",
            text_align="align",
            text_baseline="middle",
            text_font_size="11px",
            text_color=label_color(),
            name="labels",
        )
        follow = CustomJS(
            args={"bars": self.source, "labels": self.labels, "yr": self.y_range}, code=_LABELS_JS
        )
        self.y_range.js_on_change("start", follow)
        self.y_range.js_on_change("end", follow)
        self.source.js_on_change("data", follow)
        self.publishes = ColumnDataSource({c: [] for c in PUBLISH_COLUMNS})
        marks = self.figure.scatter(
            x="x",
            y="y",
            source=self.publishes,
            marker="inverted_triangle",
            size=11,
            color="#f97316",
            line_color="#7c2d12",
            name="publishes",
        )
        self.figure.yaxis.visible = False
        self.figure.ygrid.grid_line_color = None
        self.figure.add_tools(
            HoverTool(
                renderers=[bars],
                tooltips=[
                    ("span", "@label"),
                    ("status", "@status"),
                    ("start", "@left{0.000} s"),
                    ("duration", "@duration{0.000} s"),
                ],
            )
        )
        self.figure.add_tools(
            HoverTool(
                renderers=[marks],
                tooltips=[("published", "@label"), ("at", "@x{0.000} s"), ("value", "@value")],
            )
        )
        self._n = 0
        self._span_ids: list[str] = []

    def update(self, cols: dict[str, list[Any]]) -> None:
        """Replace every bar (after the tree changed)."""
        n = len(cols["y"])
        self._span_ids = list(cols["span_id"])
        data: dict[str, Any] = {k: v for k, v in cols.items() if k not in _SERVER_ONLY}
        for name, dtype in _NUMERIC.items():
            data[name] = np.asarray([np.nan if v is None else v for v in cols[name]], dtype)
        data["running"] = running = np.asarray(cols["running"], dtype=bool)
        data["alpha"] = np.where(running, 0.55, 0.9).astype(np.float32)
        self.source.data = data
        late = LATE * max(cols["right"], default=0.0)
        top = [i for i, y in enumerate(cols["y"]) if y < VISIBLE_ROWS]
        self.labels.data = {
            "left": [cols["left"][i] for i in top],
            "y": [cols["y"][i] for i in top],
            "label": [cols["label"][i] for i in top],
            "align": ["right" if cols["left"][i] > late else "left" for i in top],
            "offset": [-4 if cols["left"][i] > late else 4 for i in top],
        }
        if n != self._n:
            start, rows = self.y_range.start, min(n, VISIBLE_ROWS)
            if self._n == 0 or (isinstance(start, float | int) and start < rows - 0.5):
                self.y_range.start = min(max(n, 1), VISIBLE_ROWS) - 0.5
            self.figure.height = 70 + 30 * min(max(n, 3), VISIBLE_ROWS)
            self._n = n

    def show_publishes(self, cols: dict[str, list[Any]]) -> None:
        """Replace the ``publish()`` markers (``trace.publish_points``)."""
        if cols != dict(self.publishes.data):
            self.publishes.data = cols

    def grow(self, running: dict[int, float]) -> None:
        """Move the right ends of running bars (row index -> seconds) without a full redraw."""
        if running:
            self.source.patch({"right": list(running.items())})

    @property
    def span_ids(self) -> list[str]:
        """The span (or gap) id of each bar, in bar order (kept here, not sent)."""
        return self._span_ids

    def selected_span(self) -> str | None:
        indices = self.source.selected.indices
        if not indices or not 0 <= indices[0] < len(self._span_ids):
            return None
        return self._span_ids[indices[0]]
