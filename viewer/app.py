"""The aiflow-nb dashboard: ``/`` lists runs, ``/?run=ID`` shows one run, live
(``&span=SPAN``: with that span selected and scrolled to), ``/?compare=A,B`` two runs
side by side; while Redis is unreachable, a page saying so that turns into the page once
Redis answers.

Served by ``aiflow viewer`` (``aiflow_viewer.server.make_server``); a reader only.
"""

from __future__ import annotations

import panel as pn

from aiflow_nb.errors import RunNotFound

from .compare_page import compare_page
from .run_page import RunPage, not_found
from .runs_page import RunsPage
from .unreachable import guarded

__all__ = ["create_app"]

pn.extension("tabulator")


def create_app() -> pn.viewable.Viewable:
    """One session's page, chosen by the ``compare`` or ``run`` query argument."""
    args = pn.state.session_args or {}
    pair = (args.get("compare") or [b""])[0].decode().strip()
    if pair:
        return guarded(lambda: compare_page(pair))
    run_id = (args.get("run") or [b""])[0].decode().strip()
    if not run_id:
        return guarded(lambda: RunsPage().start().layout)
    span = (args.get("span") or [b""])[0].decode().strip() or None
    return guarded(lambda: _run_page(run_id, span))


def _run_page(run_id: str, span: str | None) -> pn.viewable.Viewable:
    try:
        return RunPage(run_id, span=span).start().layout
    except RunNotFound:
        return not_found(run_id)
