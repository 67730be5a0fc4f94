"""The aiflow-nb dashboard: ``/`` lists runs, ``/?run=ID`` shows one run, live
(``&span=SPAN``: with that span selected and scrolled to), ``/?compare=A,B`` two runs
side by side; each in the namespace ``&ns=NAME`` (default ``AIFLOW_NAMESPACE``; the runs
page's selector switches it, links keep it), dark while the browser prefers dark
(``?theme=dark|light`` overrides: ``theme.py``); while Redis is unreachable, a page
saying so that turns into the page once Redis answers.

Served by ``aiflow viewer`` (``aiflow_viewer.server.make_server``); a reader only.
"""

from __future__ import annotations

import panel as pn

from aiflow_nb.config import settings, use_namespace
from aiflow_nb.errors import RunNotFound

from .compare_page import compare_page
from .namespace import unknown_namespace, unknown_namespace_html
from .run_page import RunPage, not_found
from .runs_page import RunsPage
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
        page = guarded(lambda: _page(args, ns))
    follow_browser(page)
    return page


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
