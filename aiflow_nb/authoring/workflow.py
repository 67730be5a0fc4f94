"""``@workflow``: components composed into a durable, observable run.

Example::

    @workflow
    async def pipeline(topic: str) -> str:
        notes = await research(topic)
        parts = await asyncio.gather(*(write(s) for s in notes))
        return "\\n".join(parts)

    handle = pipeline.start(topic="redis")   # queued; a worker executes it
    handle.result(timeout=60)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from ..config import parse_duration
from ..errors import ConfigError, InvalidInputs
from . import registry
from .component import _NOTHING, Component, _policies_from
from .policies import RetryPolicy, RetrySpec, TimeoutPolicy

if TYPE_CHECKING:
    from ..access.handle import RunHandle

__all__ = ["Starter", "Workflow", "install_starter", "workflow"]

Starter = Callable[["Workflow[Any, Any]", dict[str, Any]], "RunHandle"]
"""Queues a run of a workflow with bound inputs and returns its handle."""

_starter: Starter | None = None


def install_starter(starter: Starter) -> None:
    """The hook through which ``Workflow.start`` submits a run. Submission and handles sit
    in layers above authoring, so the access layer installs it (``access/start.py``) rather
    than authoring importing upwards."""
    global _starter
    _starter = starter


P = ParamSpec("P")
R = TypeVar("R")


class Workflow(Component[P, R]):
    """A component that can be started as a run; registered by name on definition."""

    code_bundle: str | None = None
    """Digest of the registered code bundle defining it (notebook code), else None."""
    retention: float | None = None
    """Seconds its finished runs are kept (``@workflow(retention=...)``); None: the
    ``AIFLOW_RETENTION`` setting."""

    def bind_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check ``inputs`` against the signature; ``InvalidInputs`` names what is wrong."""
        try:
            return self.bind((), inputs)
        except TypeError as exc:
            raise InvalidInputs(f"inputs for workflow {self.name!r}: {exc}") from None

    def start(self, **inputs: Any) -> RunHandle:
        """Queue a run and return its handle at once."""
        bound = self.bind_inputs(inputs)
        registry.register(self)  # this process's workers run this very definition
        if _starter is None:
            raise ConfigError("no starter installed: import aiflow_nb (it installs one)")
        return _starter(self, bound)

    def run(self, **inputs: Any) -> Any:
        """Start a run and wait for its output (raises ``RunFailed`` if it fails)."""
        return self.start(**inputs).result()


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    retry: RetryPolicy | int | RetrySpec | None = None,
    timeout: TimeoutPolicy | float | None = None,
    secret_args: Iterable[str] = (),
    retention: float | str | None = None,
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | int | RetrySpec | None = None,
    timeout: TimeoutPolicy | float | None = None,
    secret_args: Iterable[str] = (),
    retention: float | str | None = None,
) -> Any:
    """Make a function a workflow: ``@workflow`` or ``@workflow(name="ingest")``.

    ``retry`` and ``timeout`` apply to the workflow's body as to a component's (see
    ``component``). ``retention`` (seconds or ``"90s"``, ``"12h"``, ``"7d"``) is how long
    its finished runs are kept, instead of ``AIFLOW_RETENTION``.
    """
    kept = None if retention is None else parse_duration(retention, "retention")

    def wrap(f: Callable[..., Any]) -> Workflow[Any, Any]:
        policies = _policies_from(retry, None, timeout, _NOTHING)
        wf: Workflow[Any, Any] = Workflow(f, name=name, policies=policies, secret_args=secret_args)
        wf.retention = kept
        registry.register(wf)
        return wf

    return wrap(fn) if fn is not None else wrap
