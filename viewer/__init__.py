"""The Panel trace dashboard of aiflow-nb (a reader: it never executes runs), installed
as ``aiflow_viewer`` (the folder is ``viewer/``).

``aiflow_viewer.app`` is the page served by ``aiflow viewer``; ``RunPage`` and
``RunsPage`` are also embeddable in a notebook (``aiflow_nb.show(run_or_id)``, from
``aiflow_viewer.show``). Modules here import each other relatively.
"""

from __future__ import annotations

__all__: list[str] = []
