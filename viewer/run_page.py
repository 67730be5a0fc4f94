"""The page of one run: totals, span tree, waterfall, span detail, live text, progress.

The page replays the run's history at once (so the first render shows everything
so far), then a ``Follower`` reads the live tail in the background and a periodic
callback folds what arrived into the ``SpanTree`` and redraws; that callback is the
throttle (a burst of events becomes one redraw per ``redraw_interval``).
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import HTMLTemplateFormatter, NumberFormatter
from redis.exceptions import RedisError

from aiflow_nb import defaults
from aiflow_nb.access.handle import attach
from aiflow_nb.access.spans import Span, resolve_values
from aiflow_nb.errors import AiflowError
from aiflow_nb.events.reader import read_events
from aiflow_nb.events.status import TERMINAL, SpanStatus
from aiflow_nb.ops.answer import open_waits
from aiflow_nb.ops.routing import waiting_reason
from aiflow_nb.store import sync_redis
from aiflow_nb.trace import (
    TREE_COLUMNS,
    Follower,
    SpanTree,
    TreeRow,
    publish_points,
    timeline_rows,
)
from aiflow_nb.trace.totals import money
from aiflow_nb.trace.treeview import fold_marks, fold_rows, match_rows, sort_siblings

from .actions import ActionsBar
from .detail import gap_html, group_html, progress_note, span_html
from .namespace import bound, href
from .style import CSS, TABLE_CONFIG, badge, copy_button, esc, seconds, use_css
from .theme import table_theme
from .treekeys import TREE_CLASS, TreeKeys
from .wait_form import WaitForm
from .waterfall import Waterfall

__all__ = [
    "GROW_INTERVAL",
    "SORTS",
    "TABLE_COLUMNS",
    "WAITING_CHECK_INTERVAL",
    "RunPage",
    "not_found",
    "table_frame",
]

SORTS = {
    "in order of start": "start",
    "longest first": "-duration",
    "most tokens first": "-tokens",
    "most cost first": "-cost",
    "most attempts first": "-attempts",
    "by name": "name",
    "by status": "status",
}
"""How siblings can be ordered (``-``: descending); the hierarchy always stays."""

GROW_INTERVAL = 0.4
"""Seconds between two moves of running bars when no event arrived."""

WAITING_CHECK_INTERVAL = 1.0
"""Seconds between two reads of why an unfinished run waits (one record and heartbeat
read per open page)."""

_LABEL = HTMLTemplateFormatter(
    template=(
        '<span style="padding-left: <%= depth * 16 %>px"><% if (group) { %>» <% } %>'
        "<%- value %></span>"
    )
)
_STATUS = HTMLTemplateFormatter(template='<span class="st-<%= value %>"><%- value %></span>')
_COST = HTMLTemplateFormatter(
    template="<% if (value) { %>$<%= Number(value).toPrecision(4) %><% } else { %>$0<% } %>"
)
"""Cost to 4 significant digits (a real cost never shows as $0.0000), as ``style.money``."""

_FAST_ROWS = {"rowHeight": 28, "renderVerticalBuffer": 60}
"""Tabulator options that make laying the span table out cheap (Panel does it three times
while a page renders): rows of one fixed height (no row is measured) and few rows drawn
beyond the view (the default: a view's height each way)."""

_NOT_SENT = ("span_id", "name", "gap")
"""Tree row fields the browser has no use for (the server keeps the rows)."""

TABLE_COLUMNS = ["fold", *(c for c in TREE_COLUMNS if c not in _NOT_SENT)]
"""The span table's columns: what is shown, the row key, and what the label's formatter
reads (``depth``, ``group``); the browser gets these only (a 2,000-span run's table is
sent, decoded and laid out with every column of its DataFrame)."""


def table_frame(rows: list[TreeRow], marks: dict[str, str]) -> pd.DataFrame:
    """The span table's ``TABLE_COLUMNS`` of ``rows`` (``marks``: ``fold_marks``), built
    column by column (no DataFrame of every ``TreeRow`` field)."""
    columns: dict[str, list[Any]] = {c: [] for c in TABLE_COLUMNS}
    fold, fields = columns["fold"], [(columns[c], c) for c in TABLE_COLUMNS[1:]]
    for row in rows:
        fold.append(marks.get(row.key, ""))
        for column, name in fields:
            column.append(getattr(row, name))
    return pd.DataFrame(columns)


class RunPage:
    """The live view of ``run_id``; ``layout`` is the Panel object to show or serve."""

    back_link = "← all runs"
    """The header's way back to the runs page (none inline: the notebook has its own)."""

    def __init__(self, run_id: str, follow: bool = True, span: str | None = None) -> None:
        use_css()
        self.run_id = run_id
        if self.back_link:  # to the runs of the namespace in force
            self.back_link = f'<div><a href="{esc(href())}">{esc(self.back_link)}</a></div>'
        self.tree = SpanTree(run_id)
        self.tree.extend(read_events(run_id, follow=False))
        self.follower = Follower(run_id, after=self.tree.totals.last_id).start() if follow else None
        self.selected: str | None = span if span in self.tree.spans else None
        """The selected row's key; ``span`` (a deep link) when the run has that span."""
        self.collapsed: set[str] = set()
        """Keys of the rows whose subtrees are folded away."""
        self._rows: list[TreeRow] = []
        self._drawn_version = -1
        self._drawn_at = 0.0
        self._grown_at = 0.0
        self.waiting: str | None = None
        """Why the run waits, if queued with no live worker able to take it."""
        self._waiting_at = 0.0
        self.form: WaitForm | None = None
        """The open wait's form while the run is parked (the record's ``waits``)."""
        self._build()
        self.redraw()
        self._scroll_to_selected()

    # --- layout -------------------------------------------------------------
    def _build(self) -> None:
        self.header = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["aiflow-header"])
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=TABLE_COLUMNS),
            show_index=False,
            disabled=True,
            selectable=1,
            hidden_columns=["key", "depth", "group"],
            formatters={
                "label": _LABEL,
                "status": _STATUS,
                "start": NumberFormatter(format="0.000"),
                "duration": NumberFormatter(format="0.000"),
                "cost": _COST,
            },
            titles={
                "fold": "",
                "label": "span",
                "start": "start (s)",
                "duration": "duration (s)",
            },
            widths={"fold": 28, "label": 200},
            height=420,
            sizing_mode="stretch_width",
            layout="fit_columns",
            pagination=None,  # one scrolling table; Tabulator draws only the rows in view
            sortable=False,  # header sorts would break the hierarchy: see ``sort``
            css_classes=[TREE_CLASS],
            configuration={**TABLE_CONFIG, **_FAST_ROWS},
            theme=table_theme(),
        )
        # callbacks run later on the server's loop: each bound to this page's namespace
        self.table.param.watch(bound(self._on_select), "selection")
        self.table.on_click(bound(self._on_fold), column="fold")
        self.search = pn.widgets.TextInput(
            placeholder="filter spans: name, status, error, text",
            width=300,
            css_classes=["aiflow-span-search"],
        )
        self.search.param.watch(bound(self._on_view_change), "value_input")
        self.sort = pn.widgets.Select(options=SORTS, value="start", width=220)
        self.sort.param.watch(bound(self._on_view_change), "value")
        self.keys = TreeKeys()
        self.keys.param.watch(bound(self._on_key), "key")
        self.waterfall = Waterfall()
        self.waterfall.source.selected.on_change("indices", bound(self._on_tap))
        self.detail = pn.pane.HTML(
            "<i>select a span</i>",
            sizing_mode="stretch_width",
            css_classes=["aiflow-span-detail"],
            stylesheets=[CSS],
        )
        self.live_choice = pn.widgets.Select(label="streamed by", options={}, width=320)
        self.live_choice.param.watch(bound(self._on_live_choice), "value")
        self._live_chosen: str | None = None
        """The streaming span picked in ``live_choice`` (None: follow the selection)."""
        self.live = pn.pane.HTML(  # its own stylesheet: page CSS stops at the shadow root
            "", sizing_mode="stretch_width", css_classes=["aiflow-live"], stylesheets=[CSS]
        )
        self.progress = pn.Column(sizing_mode="stretch_width")
        self._bars: dict[str, pn.indicators.Progress] = {}
        self._bar_notes: dict[str, pn.pane.HTML] = {}
        self.wait_box = pn.Column(sizing_mode="stretch_width", css_classes=["aiflow-wait"])
        self.actions = ActionsBar(self.run_id, opened=self._open)
        self.layout = pn.Column(
            self.header,
            self.actions.layout,
            self.wait_box,
            pn.Row(
                pn.Column(
                    "### Spans",
                    pn.Row(self.search, self.sort, self.keys),
                    self.table,
                    sizing_mode="stretch_width",
                ),
                pn.Column("### Detail", self.detail, width=460),
                sizing_mode="stretch_width",
            ),
            "### Timeline",
            pn.pane.Bokeh(self.waterfall.figure, sizing_mode="stretch_width"),
            pn.Row(
                pn.Column(
                    "### Live output", self.live_choice, self.live, sizing_mode="stretch_width"
                ),
                pn.Column("### Progress", self.progress, width=460),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def start(self) -> RunPage:
        """Begin following (call once the page is in a served document or a notebook)."""
        self._callback = pn.state.add_periodic_callback(
            bound(self.tick), period=defaults.VIEWER_TICK_MS
        )
        if pn.state.curdoc is not None:
            pn.state.curdoc.on_session_destroyed(lambda _ctx: self.stop())
        return self

    def stop(self) -> None:
        callback = getattr(self, "_callback", None)
        if callback is not None:
            callback.stop()
        if self.follower is not None:
            self.follower.stop()

    # --- updates --------------------------------------------------------------
    @property
    def redraw_interval(self) -> float:
        """Seconds between two full redraws: longer for big runs (at most 0.8 s)."""
        return min(0.8, 0.15 + len(self.tree.spans) / 4000)

    def tick(self) -> None:
        """Fold new events; redraw if something changed, else grow running bars."""
        if self.follower is not None:
            self.tree.extend(self.follower.drain())
        now = time.time()
        if (
            self.follower is not None
            and self.follower.error is not None
            and "aiflow-error" not in self.header.object
        ):
            self.header.object = self._header_html(now)
        if self._check_waiting(now):
            self.header.object = self._header_html(now)
        if self.tree.version != self._drawn_version:
            if now - self._drawn_at >= self.redraw_interval:
                self.redraw(now)
        elif self.tree.running():
            self._grow(now)

    def _check_waiting(self, now: float) -> bool:
        """Every ``WAITING_CHECK_INTERVAL`` while the run has not ended: read why it waits
        (a failed read keeps the note as it was). True when the note changed."""
        if now - self._waiting_at < WAITING_CHECK_INTERVAL:
            return False
        self._waiting_at = now
        waiting, waits = None, {}
        if self.tree.totals.status not in TERMINAL:
            try:
                rec = attach(self.run_id).record()
                waiting, waits = waiting_reason(rec, sync_redis()), open_waits(rec)
            except (AiflowError, RedisError, OSError):
                return False
        self._show_form(waits)
        changed, self.waiting = waiting != self.waiting, waiting
        return changed

    def _show_form(self, waits: dict[str, dict[str, Any]]) -> None:
        """The form of the run's open wait (a new one for a new wait; none once closed)."""
        wait = next((w for w in waits.values() if w.get("kind") != "sleep"), None)
        if self.form is not None and (wait is None or wait.get("name") != self.form.name):
            # an answer from this page stays said (the run may end in the same tick)
            said = self.form.answered
            note = [pn.pane.HTML(esc(said), css_classes=["aiflow-wait-status"])] if said else []
            self.form, self.wait_box.objects = None, note
        if wait is not None and self.form is None:
            self.form = WaitForm(self.run_id, wait)
            self.wait_box.objects = [self.form.layout]

    def redraw(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._drawn_version, self._drawn_at = self.tree.version, now
        column = str(self.sort.value)
        rows = sort_siblings(self.tree.rows(now), column.lstrip("-"), column.startswith("-"))
        rows = match_rows(rows, self.tree, str(self.search.value_input or ""))
        marks = fold_marks(rows, self.collapsed)
        self._rows = fold_rows(rows, self.collapsed)
        frame = table_frame(self._rows, marks)
        self.table.height = 96 + 26 * min(max(len(frame), 1), 14)
        self.table.value = frame
        self._restore_selection()
        bars = timeline_rows(self.tree, now, self._rows)
        self.waterfall.update(bars)
        self.waterfall.show_publishes(publish_points(self.tree, bars))
        self.header.object = self._header_html(now)
        self.actions.update(self.tree.totals.status)
        self._show_detail(now)
        self._show_live()
        self._show_progress()

    def _grow(self, now: float) -> None:
        """Running bars, running durations and the run's duration move on with the clock."""
        if now - self._grown_at < GROW_INTERVAL:
            return
        self._grown_at = now
        t0 = self.tree.t0 or now
        data = self.waterfall.source.data
        self.waterfall.grow({i: now - t0 for i, running in enumerate(data["running"]) if running})
        waiting = {g.key for g in self.tree.gaps if g.end is None}
        durations = [
            (i, now - t0 - r.start)
            for i, r in enumerate(self._rows)
            if (r.status == SpanStatus.RUNNING or r.key in waiting) and r.start is not None
        ]
        if durations and len(self.table.value) == len(self._rows):
            self.table.patch({"duration": durations})
        self.header.object = self._header_html(now)

    # --- tree navigation ------------------------------------------------------------
    def _on_view_change(self, _event: Any) -> None:
        """The search text or the sort changed."""
        self.redraw()

    def _on_fold(self, event: Any) -> None:
        if 0 <= event.row < len(self._rows):
            self.toggle(self._rows[event.row].key)

    def toggle(self, key: str, open_: bool | None = None) -> None:
        """Fold (or unfold) the subtree under the row ``key``; ``open_`` forces one way."""
        folded = key in self.collapsed
        if open_ is None or open_ == folded:
            (self.collapsed.discard if folded else self.collapsed.add)(key)
            self.redraw()

    def _on_key(self, event: Any) -> None:
        for key in self.keys.new_keys(str(event.new)):
            self.press(key)

    def press(self, key: str) -> None:
        """A key on the tree: up/down move the selection, left folds (or goes to the
        parent), right unfolds, Enter opens the selected row's detail."""
        keys = [r.key for r in self._rows]
        if not keys:
            return
        i = keys.index(self.selected) if self.selected in keys else -1
        row = self._rows[i] if i >= 0 else None
        if key == "down":
            self.select(keys[min(i + 1, len(keys) - 1)])
        elif key == "up":
            self.select(keys[max(i - 1, 0)])
        elif key == "left" and row is not None:
            has_kids = i + 1 < len(keys) and self._rows[i + 1].depth > row.depth
            if has_kids:
                self.toggle(row.key, open_=False)
            else:
                parent = next((r for r in reversed(self._rows[:i]) if r.depth < row.depth), None)
                if parent is not None:
                    self.select(parent.key)
        elif key == "right" and row is not None:
            self.toggle(row.key, open_=True)
        elif key == "enter":
            self.select(keys[i] if i >= 0 else keys[0])
        self._scroll_to_selected()

    def _scroll_to_selected(self) -> None:
        keys = [r.key for r in self._rows]
        if self.selected in keys:
            self.keys.row = keys.index(self.selected)

    @staticmethod
    def _open(run_id: str) -> None:
        """Navigate the browser to the run ``run_id`` (a rerun's new run)."""
        if pn.state.location is not None:
            pn.state.location.search = href(run=run_id)

    # --- selection --------------------------------------------------------------
    def _on_select(self, event: Any) -> None:
        if event.new:
            row = self.table.value.iloc[event.new[0]]
            self.selected, self._live_chosen = str(row["key"]), None
            self._show_detail(time.time())
            self._show_live()

    def _on_tap(self, _attr: str, _old: Any, _new: Any) -> None:
        span_id = self.waterfall.selected_span()
        if span_id is not None and span_id != self.selected:
            self.select(span_id)

    def select(self, key: str) -> None:
        """Select the span (or fan-out group) with this row key."""
        self.selected, self._live_chosen = key, None
        self._restore_selection()
        self._scroll_to_selected()
        self._show_detail(time.time())
        self._show_live()

    def _restore_selection(self) -> None:
        keys = list(self.table.value["key"])
        wanted = [keys.index(self.selected)] if self.selected in keys else []
        if self.table.selection != wanted:
            self.table.selection = wanted

    # --- panes --------------------------------------------------------------------
    def _show_detail(self, now: float) -> None:
        span = self.tree.spans.get(self.selected or "")
        if span is not None:
            if span.refs:  # large inputs/output: read from the record and journal once
                resolve_values([span], self.run_id, sync_redis())
            self.detail.object = span_html(self.tree, span, now)
            return
        row = next((r for r in self._rows if r.key == self.selected), None)
        gap = next((g for g in self.tree.gaps if g.key == self.selected), None)
        if gap is not None:
            self.detail.object = gap_html(gap, now)
            return
        self.detail.object = group_html(row) if row else "<i>select a span</i>"

    def _on_live_choice(self, event: Any) -> None:
        if event.new and event.new != self._live_span_id():
            self._live_chosen = str(event.new)
            self._show_live()

    def _show_live(self) -> None:
        """The streamed text of one span: the one picked in ``live_choice``, else the
        selected span if it streamed, else the last running (or last) streaming span."""
        streaming = {
            s.span_id: f"{s.name} · {s.span_id[-8:]}" for s in self.tree.spans.values() if s.text
        }
        options = {label: sid for sid, label in streaming.items()}
        if self.live_choice.options != options:
            self.live_choice.options = options
        self.live_choice.visible = len(options) > 1  # a choice only when there is one
        span = self._live_span()
        if span is None:
            ended = self.tree.status in TERMINAL
            self.live.object = (
                "<i>this run streamed no output</i>" if ended else "<i>no streamed output yet</i>"
            )
            return
        if self.live_choice.value != span.span_id:
            self.live_choice.value = span.span_id
        tail = span.text[-4000:]
        self.live.object = (
            f"<div><b>{esc(span.name)}</b> {badge(span.status)}</div>"
            f'<pre class="aiflow-live-text">{esc(tail)}</pre>'
        )

    def _live_span_id(self) -> str | None:
        span = self._live_span()
        return None if span is None else span.span_id

    def _live_span(self) -> Span | None:
        picked = self.tree.spans.get(self._live_chosen or "")
        if picked is not None and picked.text:
            return picked
        chosen = self.tree.spans.get(self.selected or "")
        if chosen is not None and chosen.text:
            return chosen
        streaming = [s for s in self.tree.spans.values() if s.text]
        running = [s for s in streaming if s.status == SpanStatus.RUNNING]
        chosen_list = running or streaming
        return chosen_list[-1] if chosen_list else None

    def _show_progress(self) -> None:
        spans = [s for s in self.tree.spans.values() if s.progress][-20:]
        if [s.span_id for s in spans] != list(self._bars):
            self._bars = {
                s.span_id: pn.indicators.Progress(width=160, height=14, value=0, max=1)
                for s in spans
            }
            self._bar_notes = {s.span_id: pn.pane.HTML("", width=150) for s in spans}
            self.progress.objects = [
                pn.Row(
                    pn.pane.HTML(esc(s.name), width=120),
                    bar,
                    self._bar_notes[s.span_id],
                    name=s.span_id,
                )
                for s, bar in zip(spans, self._bars.values(), strict=True)
            ]
        for s in spans:
            p = s.progress or {}
            total, done = p.get("total"), p.get("done") or 0
            bar = self._bars[s.span_id]
            bar.max = max(int(total or 0), 1)
            bar.value = min(int(done), bar.max) if total else -1
            self._bar_notes[s.span_id].object = progress_note(p)

    def _forked_html(self) -> str:
        """``rerun of <source>`` (on the dashboard a link to its page and to the compare
        page), when the run is a rerun."""
        source = self.tree.totals.forked_from
        if source is None:
            return ""
        if not self.back_link:  # inline (a notebook output): links would navigate it
            return f'<div class="aiflow-forked">rerun of <code>{esc(source)}</code></div>'
        pair = f"{source},{self.run_id}"
        return (
            f'<div class="aiflow-forked">rerun of <a href="{esc(href(run=source))}">'
            f"<code>{esc(source)}</code></a> · "
            f'<a href="{esc(href(compare=pair))}">compare with it</a></div>'
        )

    def _header_html(self, now: float) -> str:
        t = self.tree.totals
        running = sum(1 for s in self.tree.spans.values() if s.status == SpanStatus.RUNNING)
        items = [
            ("status", badge(t.status)),
            ("duration", seconds(t.duration(now))),
            ("spans", t.spans),
            ("running", running),
            ("retries", t.retries),
            ("errors", t.errors),
            ("cached", t.cached),
            ("replayed", t.replayed),
            ("tokens", t.tokens),
            ("cost", money(t.cost)),
        ]
        if t.resumes:
            items.append(("resumed", f"{t.resumes}×"))
        if t.gaps.items:  # part of the duration; time sat failed before a resume is not
            items.append(("waiting", seconds(t.waiting(now))))
        if t.steps_replayed:  # what a replay (a rerun's, a resume's) did not pay for
            items.append(("executed", t.executed))
            items.append(("saved", f"{t.tokens_saved} tokens · {money(t.cost_saved)}"))
        cells = "".join(f'<div class="tot-{k}">{k}<br><b>{v}</b></div>' for k, v in items)
        error = self.follower.error if self.follower is not None else None
        warning = (
            f'<div class="aiflow-error">live updates stopped: {esc(error)}</div>'
            if error is not None
            else ""
        )
        if self.waiting:
            warning += f'<div class="aiflow-waiting">waiting: {esc(self.waiting)}</div>'
        return (
            f"{self.back_link}{warning}"
            f"<h2>{esc(t.workflow or '')} <code>{esc(self.run_id)}</code>"
            f"{copy_button(self.run_id, 'run id')}</h2>{self._forked_html()}"
            f'<div class="aiflow-totals">{cells}</div>'
        )


def not_found(run_id: str) -> pn.viewable.Viewable:
    return pn.pane.HTML(
        f'<h2>run <code>{esc(run_id)}</code> not found</h2><a href="{esc(href())}">← all runs</a>'
    )
