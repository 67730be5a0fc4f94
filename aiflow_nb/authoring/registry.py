"""The process's workflows by name: what a worker here can execute."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import WorkflowNotFound

if TYPE_CHECKING:
    from .workflow import Workflow

__all__ = ["get", "names", "register", "unregister"]

_lock = threading.Lock()
_workflows: dict[str, Workflow[Any, Any]] = {}


def register(wf: Workflow[Any, Any]) -> None:
    """Make ``wf`` executable by workers of this process (a redefinition replaces it)."""
    with _lock:
        _workflows[wf.name] = wf


def unregister(name: str) -> None:
    with _lock:
        _workflows.pop(name, None)


def get(name: str) -> Workflow[Any, Any]:
    """The workflow named ``name``, or ``WorkflowNotFound``."""
    with _lock:
        wf = _workflows.get(name)
        if wf is None:
            raise WorkflowNotFound(name, list(_workflows))
        return wf


def names() -> list[str]:
    with _lock:
        return sorted(_workflows)
