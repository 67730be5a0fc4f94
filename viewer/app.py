"""The aiflow-nb dashboard: ``/`` lists runs, ``/?run=ID`` shows one run, live
(``&span=SPAN``: with that span selected and scrolled to), ``/?compare=A,B`` two runs
side by side; each in the namespace ``&ns=NAME`` (default ``AIFLOW_NAMESPACE``; the runs
page's selector switches it, links keep it), dark while the browser prefers dark
(``?theme=dark|light`` overrides: ``theme.py``); while Redis is unreachable, a page
saying so that turns into the page once Redis answers. A run page is built aside
(``aside``): the request is answered at once, the page follows while the browser loads
its scripts.

Served by ``aiflow viewer`` (``aiflow_viewer.server.make_server``); a reader only.
"""

from __future__ import annotations

import panel as pn

from aiflow_nb.config import settings, use_namespace
from aiflow_nb.errors import RunNotFound

from .aside import aside
from .compare_page import compare_page
from .namespace import unknown_namespace, unknown_namespace_html
from .run_page import RunPage, not_found
from .runs_page import RunsPage
from .style import use_css
from .theme import apply_theme, follow_browser
from .unreachable import guarded

__all__ = ["create_app"]

pn.extension("tabulator")


def create_app() -> pn.viewable.Viewable:
    """One session's page, chosen by the ``compare`` or ``run`` query argument, in the
    namespace of the ``ns`` one (built in it; the page binds its callbacks to it)."""
    apply_theme()
    args = pn.state.session_args or {}
    ns = _arg(args, "ns") or settings().namespace
    with use_namespace(ns):
        if _arg(args, "run") and not _arg(args, "compare"):
            page = _run_page_aside(args, ns)
        else:
            page = guarded(lambda: _page(args, ns))
    follow_browser(page)
    return page


def _run_page_aside(args: dict[str, list[bytes]], ns: str) -> pn.viewable.Viewable:
    """The run page built on a thread (``aside``); anything but the page (an unknown
    namespace or run, Redis unreachable) built again the ordinary way, as ``_page``."""
    run_id = _arg(args, "run")
    use_css()  # in the HTML answered now, before the page is built

    def prepare() -> RunPage:
        if unknown_namespace(ns):
            raise RunNotFound(run_id)  # the fallback says which namespaces have runs
        return RunPage(run_id, span=_arg(args, "span") or None)

    def finish(page: RunPage) -> pn.viewable.Viewable:
        layout = page.start().layout
        follow_browser(layout)  # built before the browser said whether it is dark
        return layout

    return aside(
        prepare,
        finish,
        fallback=lambda: guarded(lambda: _page(args, ns)),
        waiting=f"loading run {run_id}…",
        stop=lambda page: page.stop(),
    )


def _arg(args: dict[str, list[bytes]], name: str) -> str:
    return (args.get(name) or [b""])[0].decode(errors="replace").strip()


def _page(args: dict[str, list[bytes]], ns: str) -> pn.viewable.Viewable:
    if unknown_namespace(ns):
        return pn.pane.HTML(unknown_namespace_html(ns), css_classes=["aiflow-unknown-ns"])
    pair = _arg(args, "compare")
    if pair:
        return compare_page(pair)
    run_id = _arg(args, "run")
    if not run_id:
        return RunsPage().start().layout
    try:
        return RunPage(run_id, span=_arg(args, "span") or None).start().layout
    except RunNotFound:
        return not_found(run_id)
