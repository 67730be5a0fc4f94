"""The notebook experience: ``%load_ext aiflow_nb``, the ``%%component`` / ``%%workflow``
/ ``%aiflow`` magics, live run widgets and their text/HTML fallbacks.

Example (in a notebook)::

    %load_ext aiflow_nb
    # aiflow-nb: embedded Redis (...) · namespace aiflow · 0 out-of-kernel workers live · ...
"""

from __future__ import annotations

from typing import Any

from ..errors import RedisUnavailable
from ..ops.local import ensure_local_worker, local_worker
from .cells import ComponentOptions, build_source
from .display import display_run
from .magics import AiflowMagics
from .serving import DefinitionWatch, start_code_worker
from .session import CodeSession
from .state import RunState
from .status import KernelStatus, kernel_status

__all__ = [
    "AiflowMagics",
    "CodeSession",
    "ComponentOptions",
    "DefinitionWatch",
    "KernelStatus",
    "RunState",
    "RunWidget",
    "build_source",
    "display_run",
    "kernel_status",
    "load",
    "start_code_worker",
    "unload",
]


def __getattr__(name: str) -> Any:
    if name == "RunWidget":  # ipywidgets is imported only when a widget is wanted
        from .widget import RunWidget

        return RunWidget
    raise AttributeError(name)


def load(shell: Any) -> AiflowMagics:
    """Register the magics on ``shell``, start the in-kernel worker when no out-of-kernel
    worker is live (``AIFLOW_LOCAL_WORKER`` overrides) and this machine's code worker
    daemon (``AIFLOW_CODE_WORKER=0``: not), serve the workflows later cells define, and
    print the status line."""
    magics = AiflowMagics(shell)
    shell.register_magics(magics)
    started = False
    daemon = None
    try:
        if local_worker() is None:
            started = ensure_local_worker() is not None
        daemon = start_code_worker()
    except RedisUnavailable:
        pass  # the status line says so
    shell.events.register("post_run_cell", DefinitionWatch())
    shell.events.register("post_run_cell", magics.register_pending)
    print(kernel_status(started=started, daemon=daemon).line())
    return magics


def unload(shell: Any) -> None:
    """Nothing to undo: the in-kernel worker stops with ``%aiflow worker stop`` or at exit."""
