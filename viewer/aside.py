"""Build a served page on a thread of its own while the browser loads the page's scripts.

A Bokeh server session runs its app inside the HTTP request: nothing reaches the browser
until the whole page is built. For a big run that is most of the server's share of the
first render (reading and folding thousands of events, building the rows), and the
browser then spends about as long again loading BokehJS, Panel and Tabulator. ``aside``
answers the request at once with a placeholder, builds the page's objects on a thread
meanwhile, and swaps the page in on the server's event loop once the session is loaded,
as one patch. The thread hands its result to the loop (tornado's ``add_callback``), which
adds the swap as a Bokeh next-tick callback (run under the document's lock).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import panel as pn
from panel.io.state import set_curdoc
from tornado.ioloop import IOLoop

from .style import esc

__all__ = ["LOADED_POLL_MS", "LOADED_WAIT_S", "aside"]

log = logging.getLogger(__name__)

LOADED_POLL_MS = 50
"""How often a built page asks whether its session has loaded yet."""
LOADED_WAIT_S = 60.0
"""After this long unloaded the page is swapped in anyway (a session whose load Panel
never marked: its onload callback raised)."""

T = TypeVar("T")


def aside(
    prepare: Callable[[], T],
    finish: Callable[[T], pn.viewable.Viewable],
    fallback: Callable[[], pn.viewable.Viewable],
    waiting: str,
    stop: Callable[[T], None] = lambda _obj: None,
) -> pn.viewable.Viewable:
    """A placeholder saying ``waiting`` that becomes ``finish(prepare())``.

    ``prepare`` runs on a thread and must not touch a document; ``finish`` runs on the
    event loop; both with this session's document and context variables as they were. If
    ``prepare`` or ``finish`` raises, ``fallback()`` (the page built the ordinary way, on
    the loop: it says what went wrong as that page would) replaces the placeholder. ``stop``
    releases a prepared object whose session ended before it was shown. Outside a served
    session, ``finish(prepare())`` at once.
    """
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return finish(prepare())
    holder = pn.Column(
        pn.pane.HTML(f'<div class="aiflow-loading">{esc(waiting)}</div>'),
        sizing_mode="stretch_width",
    )
    ended = threading.Event()
    loop = IOLoop.current()  # this request's: its add_callback is safe from any thread
    doc.on_session_destroyed(lambda _ctx: ended.set())

    def show(outcome: tuple[Any, BaseException | None]) -> None:
        obj, error = outcome
        if ended.is_set():
            if error is None:
                stop(obj)
            return
        page = None
        if error is None:
            try:
                page = finish(obj)
            except Exception:  # said by the page built the ordinary way, as it would be
                stop(obj)
        if page is None:
            try:
                page = fallback()
            except Exception as exc:  # never left saying "loading"
                log.exception("aiflow viewer: the page could not be built")
                page = pn.pane.HTML(
                    f'<div class="aiflow-error">the page could not be built: '
                    f"{esc(type(exc).__name__)}: {esc(str(exc))}</div>"
                )
        holder[:] = [page]

    def swap(outcome: tuple[Any, BaseException | None], since: float) -> None:
        with set_curdoc(doc):
            if ended.is_set() or pn.state.loaded or time.monotonic() - since > LOADED_WAIT_S:
                show(outcome)  # sent to the browser as a patch
            else:
                # until the session is loaded Panel defers a change to the next tick and
                # then drops it, taking it to be in the document the browser pulls, which
                # it may have pulled in between: change it once loaded. Asked again every
                # LOADED_POLL_MS rather than as one of Panel's onload callbacks, which are
                # all lost when one before them raises
                doc.add_timeout_callback(lambda: on_loop.run(swap, outcome, since), LOADED_POLL_MS)

    def work() -> None:
        try:
            with set_curdoc(doc):
                outcome: tuple[Any, BaseException | None] = (prepare(), None)
        except Exception as exc:  # shown by ``fallback``, which builds the page again
            outcome = (None, exc)
        loop.add_callback(schedule, outcome)

    def schedule(outcome: tuple[Any, BaseException | None]) -> None:
        # on the loop, so after the request that built the placeholder has made the
        # document's ServerSession: adding a next-tick callback from the thread while Bokeh
        # was still constructing it (between its change hook and its callback group)
        # raised there, so the page was stopped (taken to be unwanted) and shown dead
        try:
            doc.add_next_tick_callback(lambda: on_loop.run(swap, outcome, time.monotonic()))
        except Exception:  # the session is gone (its document no longer takes callbacks)
            if outcome[1] is None:
                stop(outcome[0])

    # the session's context variables (its namespace: ``config.use_namespace``) in force
    # on the thread and, later, on the loop
    on_thread, on_loop = contextvars.copy_context(), contextvars.copy_context()
    threading.Thread(target=on_thread.run, args=(work,), name="aiflow-page", daemon=True).start()
    return holder
