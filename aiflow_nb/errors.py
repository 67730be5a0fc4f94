"""One exception hierarchy for aiflow-nb.

::

    AiflowError
    ├── ApiError               an HTTP request the REST API refuses (``status``, ``code``)
    ├── CellError              a %%component / %%workflow cell that cannot become one
    ├── ConfigError            bad settings or environment
    ├── ExportError            a trace export the receiving endpoint refused or never got
    ├── RedisUnavailable       Redis cannot be reached (names the URL)
    ├── SerializationError     a value is not JSON-serialisable (also TypeError)
    ├── LLMUnavailable         an LLM call failed on every provider after its retries
    ├── InvalidInputs          inputs that do not fit the workflow's signature (also TypeError)
    ├── RunNotFound            unknown run id (also LookupError)
    ├── WorkflowNotFound       unknown workflow name (also LookupError)
    ├── ComponentFailed        a component exhausted its retries; ``__cause__`` is the original
    ├── ComponentTimeout       one attempt ran past its timeout (also TimeoutError)
    ├── RunFailed              a run ended ``failed`` (raised by ``RunHandle.result``)
    ├── RunCancelled           a run ended ``cancelled``
    ├── RunStateError          the run is in a state that forbids the operation
    └── CodeRejected           registered code is unsigned or tampered with

``WorkerShutdown`` derives from ``BaseException`` so that no ``except Exception``
swallows a drain or a stop.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AiflowError",
    "ApiError",
    "CellError",
    "CodeRejected",
    "ComponentFailed",
    "ComponentTimeout",
    "ConfigError",
    "ExportError",
    "InvalidInputs",
    "LLMUnavailable",
    "RedisUnavailable",
    "RunCancelled",
    "RunFailed",
    "RunNotFound",
    "RunStateError",
    "SerializationError",
    "WorkerShutdown",
    "WorkflowNotFound",
]


class AiflowError(Exception):
    """Base class of every error aiflow-nb raises on purpose."""


class ApiError(AiflowError):
    """A request the REST API refuses; ``status`` is the HTTP status, ``code`` a short tag."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class CellError(AiflowError, ValueError):
    """A ``%%component`` / ``%%workflow`` cell that does not compile or does not define
    exactly one function; nothing was defined or registered."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows: the message (and the cell's own error), not the magic's
        internals."""
        import traceback

        cause = self.__cause__
        lines = traceback.format_exception(cause) if cause is not None else []
        return [*"".join(lines).splitlines(), f"CellError: {self}"]


class ConfigError(AiflowError):
    """A setting or environment variable has a value that cannot work."""


class ExportError(AiflowError):
    """Exporting traces failed: the endpoint is unreachable or refused the request."""


class RedisUnavailable(AiflowError):
    """Redis could not be reached; the message names the URL and what to do."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach Redis at {url}: {reason}. Start that Redis, fix REDIS_URL, "
            "or unset REDIS_URL to use the embedded Redis (see `aiflow redis status`)."
        )
        self.url = url


class SerializationError(AiflowError, TypeError):
    """A value that must be stored as JSON is not JSON-serialisable."""


class InvalidInputs(AiflowError, TypeError):
    """Inputs that do not fit the workflow's signature."""


class LLMUnavailable(AiflowError):
    """An LLM call failed on its provider and every fallback after their retries.

    ``errors`` lists ``(target, error)`` per provider tried; ``__cause__`` is the last error.
    """

    def __init__(
        self, operation: str, attempts: int, errors: list[tuple[str, BaseException]]
    ) -> None:
        tried = "; ".join(f"{target}: {type(err).__name__}: {err}" for target, err in errors)
        super().__init__(
            f"{operation} failed on every provider after {attempts} attempt(s) ({tried})"
        )
        self.operation = operation
        self.attempts = attempts
        self.errors = errors
        if errors:
            self.__cause__ = errors[-1][1]


class RunNotFound(AiflowError, LookupError):
    """No run with that id exists in this namespace."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class WorkflowNotFound(AiflowError, LookupError):
    """No workflow with that name is registered."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f"; known workflows: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"no workflow named {name!r}{hint}")
        self.name = name


class ComponentFailed(AiflowError):
    """A component failed after all its attempts; the original error is ``__cause__``."""

    def __init__(self, component: str, attempts: int, error: BaseException) -> None:
        super().__init__(
            f"component {component!r} failed after {attempts} attempt(s): "
            f"{type(error).__name__}: {error}"
        )
        self.component = component
        self.attempts = attempts
        self.error = error
        self.__cause__ = error


class ComponentTimeout(AiflowError, TimeoutError):
    """One attempt of a component ran longer than its timeout."""

    def __init__(self, component: str, seconds: float) -> None:
        super().__init__(f"component {component!r} timed out after {seconds:g} s")
        self.component = component
        self.seconds = seconds


class RunFailed(AiflowError):
    """The run ended ``failed``; ``error`` holds the recorded error document."""

    def __init__(self, run_id: str, error: dict[str, Any] | None) -> None:
        err = error or {}
        super().__init__(
            f"run {run_id} failed: {err.get('type', 'Error')}: {err.get('message', '')}"
        )
        self.run_id = run_id
        self.error = err


class RunCancelled(AiflowError):
    """The run was cancelled."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} was cancelled")
        self.run_id = run_id


class RunStateError(AiflowError):
    """The run's state forbids the operation (e.g. resuming a completed run)."""


class CodeRejected(AiflowError):
    """Registered code failed its signature check, or is unsigned while a secret is set."""


class WorkerShutdown(BaseException):
    """Raised inside a worker to stop it; never swallowed by ``except Exception``."""
