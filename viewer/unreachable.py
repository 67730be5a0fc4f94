"""When Redis is unreachable: a friendly page (what is down, where, that it retries) in
place of a raw traceback, which turns into the page asked for once Redis answers."""

from __future__ import annotations

import time
from collections.abc import Callable

import panel as pn

from aiflow_nb import defaults
from aiflow_nb.errors import RedisUnavailable, Unavailable
from aiflow_nb.redaction import shown_url
from aiflow_nb.store.connection import redis_url
from aiflow_nb.store.outage import CONNECTION_ERRORS

from .namespace import bound
from .style import esc

__all__ = ["UNREACHABLE", "guarded", "unreachable_html"]

UNREACHABLE: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, Unavailable)
"""What the pages take for Redis being unreachable (anything else is a bug, shown)."""


def unreachable_html(exc: BaseException, since: float) -> str:
    """The message: Redis's URL, since when, that the page retries by itself, the reason."""
    retry = defaults.VIEWER_REDIS_RETRY_MS / 1000
    advice = (
        ""  # its message says what to do
        if isinstance(exc, RedisUnavailable)
        else "<p>Start that Redis, or check <code>REDIS_URL</code> "
        "(<code>aiflow redis status</code>).</p>"
    )
    return (
        '<div class="aiflow-unreachable"><h2>Redis is unreachable</h2>'
        f"<p>The dashboard cannot reach Redis at <code>{esc(shown_url(redis_url()))}</code> "
        f"(since {time.strftime('%H:%M:%S', time.localtime(since))}). It tries again "
        f"every {retry:g} s and shows the page as soon as Redis answers: no need to "
        f"reload.</p>{advice}"
        f'<p class="aiflow-reason">{esc(type(exc).__name__)}: {esc(exc)}</p></div>'
    )


def guarded(build: Callable[[], pn.viewable.Viewable]) -> pn.viewable.Viewable:
    """``build()``, or while Redis is unreachable the friendly page, which calls
    ``build()`` again every ``VIEWER_REDIS_RETRY_MS`` (in the namespace in force now) and
    becomes its result."""
    build = bound(build)
    try:
        return build()
    except UNREACHABLE as exc:
        since = time.time()
        note = pn.pane.HTML(unreachable_html(exc, since), sizing_mode="stretch_width")
        holder = pn.Column(note, sizing_mode="stretch_width")

    def retry() -> None:
        try:
            page = build()
        except UNREACHABLE as again:
            note.object = unreachable_html(again, since)
            return
        callback.stop()
        holder[:] = [page]

    callback = pn.state.add_periodic_callback(retry, period=defaults.VIEWER_REDIS_RETRY_MS)
    return holder
