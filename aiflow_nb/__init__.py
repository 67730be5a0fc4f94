"""aiflow-nb: resilient, long-running LLM workflows, Jupyter first.

Example::

    from aiflow_nb import component, workflow

    @component(retry=3)
    def shout(text: str) -> str:
        return text.upper()

    @workflow
    def hello(name: str) -> str:
        return shout(f"hello {name}")

    hello.run(name="world")
"""

from __future__ import annotations

from aiflow_viewer.show import show  # imports nothing at module level: no cycle

from . import limits  # aiflow_nb.limits.set(...) with no import of its own
from .access.answer import respond, send
from .access.archive import Archive, load_archive
from .access.compare import compare, diff_outputs
from .access.handle import RunHandle, attach
from .access.rerun import rerun
from .access.runs import runs
from .access.spans import Span, build_spans, spans_dataframe
from .access.start import resume
from .authoring.component import Component, component
from .authoring.policies import CachePolicy, FallbackPolicy, Policies, RetryPolicy, TimeoutPolicy
from .authoring.workflow import Workflow, workflow
from .config import Settings, configure, settings
from .errors import (
    AiflowError,
    AlreadyAnswered,
    CellError,
    CodeRejected,
    ComponentFailed,
    ComponentTimeout,
    ConfigError,
    ExportError,
    InputTimeout,
    InvalidInputs,
    LLMUnavailable,
    RedisUnavailable,
    RunCancelled,
    RunError,
    RunFailed,
    RunNotFound,
    RunStateError,
    RunTimeout,
    SerializationError,
    Unavailable,
    ValueTooLarge,
    WaitNotFound,
    WorkerShutdown,
    WorkflowNotFound,
)
from .events.model import Event
from .ops.retention import delete
from .runtime.emit import progress, publish, set_attributes
from .runtime.waits import sleep, wait_for_event, wait_for_input
from .version import __version__ as __version__


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext aiflow_nb``: the magics, the in-kernel worker and a status line."""
    from .notebook import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .notebook import unload

    unload(ipython)


__all__ = [
    "AiflowError",
    "AlreadyAnswered",
    "Archive",
    "CachePolicy",
    "CellError",
    "CodeRejected",
    "Component",
    "ComponentFailed",
    "ComponentTimeout",
    "ConfigError",
    "Event",
    "ExportError",
    "FallbackPolicy",
    "InputTimeout",
    "InvalidInputs",
    "LLMUnavailable",
    "Policies",
    "RedisUnavailable",
    "RetryPolicy",
    "RunCancelled",
    "RunError",
    "RunFailed",
    "RunHandle",
    "RunNotFound",
    "RunStateError",
    "RunTimeout",
    "SerializationError",
    "Settings",
    "Span",
    "TimeoutPolicy",
    "Unavailable",
    "ValueTooLarge",
    "WaitNotFound",
    "WorkerShutdown",
    "Workflow",
    "WorkflowNotFound",
    "attach",
    "build_spans",
    "compare",
    "component",
    "configure",
    "delete",
    "diff_outputs",
    "limits",
    "load_archive",
    "progress",
    "publish",
    "rerun",
    "respond",
    "resume",
    "runs",
    "send",
    "set_attributes",
    "settings",
    "show",
    "sleep",
    "spans_dataframe",
    "wait_for_event",
    "wait_for_input",
    "workflow",
]
