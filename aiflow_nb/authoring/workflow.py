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

from ..errors import InvalidInputs
from . import registry
from .component import _NOTHING, Component, _policies_from

if TYPE_CHECKING:
    from ..access.handle import RunHandle

__all__ = ["Workflow", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")


class Workflow(Component[P, R]):
    """A component that can be started as a run; registered by name on definition."""

    code_bundle: str | None = None
    """Digest of the registered code bundle defining it (notebook code), else None."""

    def bind_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check ``inputs`` against the signature; ``InvalidInputs`` names what is wrong."""
        try:
            return self.bind((), inputs)
        except TypeError as exc:
            raise InvalidInputs(f"inputs for workflow {self.name!r}: {exc}") from None

    def start(self, **inputs: Any) -> RunHandle:
        """Queue a run and return its handle at once."""
        from ..ops.local import ensure_local_worker
        from ..ops.submit import submit

        registry.register(self)  # this process's workers run this very definition
        handle = submit(
            self.name, self.bind_inputs(inputs), secret_args=self.secret_args, code=self.code_bundle
        )
        ensure_local_worker()
        return handle

    def run(self, **inputs: Any) -> Any:
        """Start a run and wait for its output (raises ``RunFailed`` if it fails)."""
        return self.start(**inputs).result()


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    retry: Any = None,
    timeout: Any = None,
    secret_args: Iterable[str] = (),
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: Any = None,
    timeout: Any = None,
    secret_args: Iterable[str] = (),
) -> Any:
    """Make a function a workflow: ``@workflow`` or ``@workflow(name="ingest")``."""

    def wrap(f: Callable[..., Any]) -> Workflow[Any, Any]:
        policies = _policies_from(retry, None, timeout, _NOTHING)
        wf: Workflow[Any, Any] = Workflow(f, name=name, policies=policies, secret_args=secret_args)
        registry.register(wf)
        return wf

    return wrap(fn) if fn is not None else wrap
