"""What a kernel serves: its in-kernel worker for the workflows defined in it, and this
machine's code worker daemon for ``%%workflow`` cells' registered code.

A workflow defined in a plain cell exists only in this kernel, so only this kernel can
run it: after each cell, ``DefinitionWatch`` starts the in-kernel worker for a new such
workflow that no live worker serves. Its runs a dead kernel left queued (re-queued by the
monitor) then continue here from their journal.
"""

from __future__ import annotations

from typing import Any

from ..authoring import registry
from ..config import settings
from ..errors import AiflowError, WorkflowNotFound
from ..ops.daemon import ensure_daemon
from ..ops.local import ensure_local_worker

__all__ = ["DefinitionWatch", "start_code_worker"]


def start_code_worker() -> str | None:
    """Start this machine's code worker daemon unless ``AIFLOW_CODE_WORKER=0``; its state
    (``running``, ``starting``, ``started``) or None."""
    if settings().code_worker is False:
        return None
    return ensure_daemon()


class DefinitionWatch:
    """An IPython ``post_run_cell`` callback: serve the plain-cell workflows a cell just
    defined (registered-code workflows go to whoever runs registered code)."""

    def __init__(self) -> None:
        self.seen: set[str] = set(registry.names())

    def __call__(self, result: Any = None) -> None:
        new = [name for name in registry.names() if name not in self.seen]
        self.seen.update(new)
        for name in new:
            try:
                if registry.get(name).code_bundle is None:
                    ensure_local_worker(workflow=name)
            except WorkflowNotFound:
                continue
            except AiflowError:  # Redis away: the run's start will try again
                return
