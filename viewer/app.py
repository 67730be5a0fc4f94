"""The aiflow-nb dashboard: ``/`` lists runs, ``/?run=ID`` shows one run, live
(``&span=SPAN``: with that span selected and scrolled to), ``/?compare=A,B`` two runs
side by side.

Served by ``aiflow viewer`` (``aiflow_viewer.server.make_server``); a reader only.
"""

from __future__ import annotations

import panel as pn

from aiflow_nb.errors import RunNotFound

from .compare_page import compare_page
from .run_page import RunPage, not_found
from .runs_page import RunsPage

__all__ = ["create_app"]

pn.extension("tabulator")


def create_app() -> pn.viewable.Viewable:
    """One session's page, chosen by the ``compare`` or ``run`` query argument."""
    args = pn.state.session_args or {}
    pair = (args.get("compare") or [b""])[0].decode().strip()
    if pair:
        return compare_page(pair)
    run_id = (args.get("run") or [b""])[0].decode().strip()
    if not run_id:
        return RunsPage().start().layout
    try:
        span = (args.get("span") or [b""])[0].decode().strip() or None
        return RunPage(run_id, span=span).start().layout
    except RunNotFound:
        return not_found(run_id)
