"""``show(run_or_id)``: the live run page of the dashboard, embedded in a notebook.

Re-exported as ``aiflow_nb.show``, so ``import aiflow_nb`` imports this module while
``aiflow_nb`` is still initialising: it imports nothing at module level (Panel and the
run page load on the first call), which keeps ``import aiflow_nb`` light and cycle-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiflow_nb.access.handle import RunHandle

__all__ = ["show"]


def show(run: RunHandle | str, follow: bool = True) -> Any:
    """A Panel layout of one run (span tree, timeline, detail, live output, progress).

    In a notebook, display the result (``aiflow_nb.show(handle)`` as the cell's value);
    it follows the run live while the kernel runs. ``RunNotFound`` for an unknown id.
    """
    from aiflow_nb.access.handle import RunHandle

    from .inline import InlineRunPage, load_inline

    load_inline()
    run_id = run.run_id if isinstance(run, RunHandle) else str(run)
    page = InlineRunPage(run_id, follow=follow)
    if follow:
        page.start()
    return page.layout
