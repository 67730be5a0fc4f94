"""``RunWidget``: a live ipywidgets view of one run.

A background thread replays the run's stream, then follows it (XREAD with a short
block), folding events into a ``RunState``; it redraws at most every
``defaults.WIDGET_REFRESH`` seconds (and once a second while running, for the clock),
so a 10,000-event run costs a few dozen redraws, not 10,000. The kernel never blocks.

Example::

    w = RunWidget(handle)   # starts following at once
    w.show()                # or let the cell display it
    w.wait(60)              # block until the run ended and the last redraw is done
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import ipywidgets as widgets
import redis

from .. import defaults
from ..access.handle import RunHandle
from ..errors import AiflowError
from ..events.follow import Follow
from ..events.model import Event
from ..events.status import TERMINAL
from . import render
from .actions import ActionsBar
from .form import WaitForm
from .state import ProgressStream, RunState

__all__ = ["RunWidget"]


class RunWidget(widgets.VBox):  # type: ignore[misc]
    """Header (id, workflow, status badge, elapsed), the actions (``actions.ActionsBar``:
    cancel, resume, rerun; a rerun's widget opens below), the form of a parked run's open
    wait (``form.WaitForm``: submitting it answers), span tree, progress bars, streamed text,
    error with traceback, final output; updated live from the run's stream."""

    def __init__(
        self,
        handle: RunHandle | str,
        *,
        follow: bool = True,
        refresh: float = defaults.WIDGET_REFRESH,
    ) -> None:
        self.handle = handle if isinstance(handle, RunHandle) else RunHandle(handle)
        self.run_state = RunState(self.handle.run_id)
        self.refresh = refresh
        self.redraws = 0
        self.failure: BaseException | None = None
        self.title_html = widgets.HTML()
        self.tree_html = widgets.HTML()
        self.bar_box = widgets.VBox()
        self.stream_html = widgets.HTML()
        self.error_html = widgets.HTML()
        self.output_html = widgets.HTML()
        self.bars: dict[str, widgets.FloatProgress] = {}
        self.form_box = widgets.VBox()
        self.form: WaitForm | None = None
        self.actions = ActionsBar(self.handle, opened=self._open, resumed=self.follow_again)
        self.opened_box = widgets.VBox()
        """The widget of the run an action started (a rerun), below this one."""
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._display: Any = None
        self._thread = threading.Thread(
            target=self._main, daemon=True, name=f"aiflow-widget-{self.handle.run_id[:8]}"
        )
        super().__init__(
            children=[
                self.title_html,
                self.actions,
                self.form_box,
                self.tree_html,
                self.bar_box,
                self.stream_html,
                self.error_html,
                self.output_html,
                self.opened_box,
            ]
        )
        self.add_class("aiflow-run-widget")
        if follow:
            self.start()

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> RunWidget:
        """Start following the run (once)."""
        if not self._thread.is_alive() and not self._finished.is_set():
            self._thread.start()
        return self

    def follow_again(self) -> None:
        """Follow the run again, from the last event shown, once the last follow ended
        (the run ended, then was resumed: its new attempt is shown live). Its end is not
        the end any more: a resume writes no event, so the follow goes on after it."""
        if self.run_state.status in TERMINAL or self._stop.is_set():
            self._thread.join(timeout=5)  # a follow that saw the end is ending
        with self._lock:
            if self._thread.is_alive():
                return
            self._stop.clear()
            self._finished.clear()
            self._thread = threading.Thread(
                target=self._main,
                args=(self.run_state.last_id,),
                daemon=True,
                name=f"aiflow-widget-{self.handle.run_id[:8]}",
            )
            self._thread.start()

    def wait(self, timeout: float | None = None) -> RunState:
        """Block until the run ended and the widget drew it; ``TimeoutError`` otherwise."""
        if not self._finished.wait(timeout):
            raise TimeoutError(
                f"run {self.handle.run_id} still {self.run_state.status} after {timeout} s"
            )
        # Again from the caller's thread: a message from another thread carries the parent
        # header of whichever cell ran last (ipykernel's global fallback), so the widget
        # thread's final update, sent between two cells, names a cell that already ended and
        # a client such as nbclient drops it (the saved output kept the first snapshot, 1
        # in 4 runs). Sent from here it belongs to the cell that waits.
        self._update_display()
        return self.run_state

    def stop(self) -> None:
        """Stop following (the widget keeps what it shows)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        if self.form is not None:
            self.form.close()
        for opened in self.opened_box.children:
            opened.close()
        for child in [*self.children, *self.bars.values()]:
            child.close()
        super().close()

    def show(self) -> RunWidget:
        """Display the widget; its text/HTML fallback is refreshed once the run ends."""
        from IPython.display import display as _display

        display = cast(Callable[..., None], _display)

        self._display = display(self, display_id=True)
        return self

    # --- following ------------------------------------------------------------
    def _main(self, after: str | None = None) -> None:
        try:
            self._follow(after)
        except Exception as exc:  # a broken connection must not kill the kernel's thread
            self.failure = exc
        finally:
            self.redraw()
            self._update_display()  # before _finished: wait() means the end was drawn
            self._finished.set()

    def _follow(self, after: str | None = None) -> None:
        spec = Follow(self.handle.run_id, after=after, block_ms=defaults.WIDGET_POLL_MS)
        drawn: float | None = None  # None: still replaying
        for batch in spec.batches(self.handle.client):
            with self._lock:
                self.run_state.apply_all(batch)
            if self.run_state.output_ref is not None:  # a large output: from the record
                self.run_state.resolve_output(self.handle.client)
            if self._stop.is_set():
                return
            now = time.monotonic()
            if self._due(drawn, batch, now):
                self._check_waiting()
                self.redraw()
                drawn = now

    def _check_waiting(self) -> None:
        """While the run has not ended: why it waits, if no live worker can take it (a
        failed read only leaves the note as it was: it must not stop the live view)."""
        waiting = None
        if self.run_state.status not in TERMINAL:
            try:
                waiting = self.handle.waiting
            except (AiflowError, redis.RedisError, OSError):
                return
        with self._lock:
            self.run_state.waiting = waiting

    def _due(self, drawn: float | None, batch: list[Event], now: float) -> bool:
        """Time to redraw: the replay caught up (its first ``[]``), or events came and
        ``refresh`` passed since ``drawn``, or a second did (the clock)."""
        if drawn is None:
            return not batch
        return (bool(batch) and now - drawn >= self.refresh) or now - drawn >= 1.0

    def _update_display(self) -> None:
        if self._display is not None:
            try:
                self._display.update(self)
            except Exception:  # pragma: no cover - the frontend went away
                pass

    # --- drawing --------------------------------------------------------------
    def redraw(self) -> None:
        """Push the current state into the child widgets (only what changed is sent)."""
        with self._lock:
            state = self.run_state
            self._set(self.title_html, render.header_html(state))
            self.actions.update(state.status)
            self._draw_form(state.open_wait)
            self._set(self.tree_html, render.tree_html(state))
            self._draw_bars(list(state.progress.values())[-defaults.WIDGET_MAX_PROGRESS :])
            self._set(self.stream_html, render.streams_html(state))
            error = render.error_html(state)
            if self.failure is not None:
                error += (
                    f"<div>live view stopped: {type(self.failure).__name__}: {self.failure}</div>"
                )
            self._set(self.error_html, error)
            self._set(self.output_html, render.output_html(state))
            self.redraws += 1

    def _draw_form(self, wait: dict[str, Any] | None) -> None:
        """The open wait's form (a new one for a new wait); none once it closed."""
        if self.form is not None and (wait is None or wait.get("name") != self.form.name):
            self.form.close()
            self.form, self.form_box.children = None, ()
        if wait is None or self.form is not None or wait.get("kind") == "sleep":
            return
        self.form = WaitForm(wait, submit=self._answerer(wait))
        self.form_box.children = (self.form,)

    def _open(self, handle: RunHandle) -> None:
        """Show ``handle``'s run (a rerun this widget started) below this one."""
        for old in self.opened_box.children:
            old.close()
        self.opened_box.children = (RunWidget(handle, refresh=self.refresh),)

    def _answerer(self, wait: dict[str, Any]) -> Callable[[Any], None]:
        name = str(wait.get("name"))
        if wait.get("kind") == "event":
            return lambda value: self.handle.send(name, value)
        return lambda value: self.handle.respond(name, value)

    @staticmethod
    def _set(widget: widgets.HTML, value: str) -> None:
        if widget.value != value:
            widget.value = value

    def _draw_bars(self, streams: list[ProgressStream]) -> None:
        for p in streams:
            bar = self.bars.get(p.span_id)
            if bar is None:
                bar = widgets.FloatProgress(
                    min=0.0,
                    layout=widgets.Layout(width="60%"),
                    style={"description_width": "initial"},
                )
                self.bars[p.span_id] = bar
            total = p.total if p.total else max(p.done, 1.0)
            if bar.max != total:
                bar.max = total
            if bar.value != min(p.done, total):
                bar.value = min(p.done, total)
            bar.description = render.progress_label(p)
            bar.bar_style = "success" if p.total and p.done >= p.total else ""
        wanted = tuple(self.bars[p.span_id] for p in streams)
        if tuple(self.bar_box.children) != wanted:
            self.bar_box.children = wanted
        shown = {p.span_id for p in streams}
        for span_id in [s for s in self.bars if s not in shown]:
            self.bars.pop(span_id).close()

    # --- fallbacks --------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = super()._repr_mimebundle_(**kwargs) or {}
        with self._lock:
            data["text/plain"] = render.render_text(self.run_state)
            data["text/html"] = render.render_html(self.run_state)
        if self.failure is not None:  # the saved notebook says why the view stopped
            data["text/plain"] += f"\n  live view stopped: {type(self.failure).__name__}: "
            data["text/plain"] += str(self.failure)
        return data
