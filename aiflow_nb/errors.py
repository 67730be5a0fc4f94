"""One exception hierarchy for aiflow-nb.

::

    AiflowError
    ├── CellError             a %%component / %%workflow cell that cannot become one
    ├── CodeRejected          registered code is unsigned or tampered with
    ├── ComponentFailed       a component exhausted its retries; ``__cause__`` is the original
    ├── ComponentTimeout      one attempt ran past its timeout (also TimeoutError)
    ├── ConfigError           bad settings or environment
    ├── InputTimeout          a wait_for_input / wait_for_event ran past its timeout
    │                         (raised into the workflow; also TimeoutError)
    ├── InvalidInputs         inputs that do not fit the workflow's signature, or an answer
    │                         that does not fit its wait's schema (also TypeError)
    ├── SerializationError    a value is not JSON-serialisable (also TypeError)
    ├── ValueTooLarge         an input, output or step result over AIFLOW_MAX_VALUE_BYTES
    ├── WorkflowNotFound      unknown workflow name (also LookupError)
    ├── RunError              one run's outcome or state: what ``RunHandle.result()`` raises
    │   ├── RunCancelled      the run ended ``cancelled``
    │   ├── RunFailed         the run ended ``failed``; ``error`` is its error document
    │   ├── RunNotFound       unknown run id (also LookupError)
    │   ├── RunStateError     the run's state forbids the operation (e.g. resuming it)
    │   │   └── AlreadyAnswered   the wait was answered already (exactly one answer counts)
    │   ├── RunTimeout        the run had not ended when the wait ran out (also TimeoutError)
    │   └── WaitNotFound      the run has no open wait of that name (also LookupError)
    └── Unavailable           a service the call needs is down or refusing: try again later
        ├── ExportError       a trace export the receiving endpoint refused or never got
        ├── LLMUnavailable    an LLM call failed on every provider after its retries
        └── RedisUnavailable  Redis cannot be reached (names the URL)

    WorkerShutdown (BaseException)  stops a worker; no ``except Exception`` swallows it
    Parked (BaseException)          unwinds a run that parks at a wait (runtime/waits.py)

``CellError`` and ``ValueTooLarge`` are also ValueErrors. The REST layer's refusals,
``aiflow_nb.api.errors.ApiError``, derive from ``AiflowError`` too; they live with the
API, above the core.

``error_document(exc)`` is the JSON form of an exception that a run's record keeps (the
message in full, once); ``event_error(doc)`` is the same document cut to the sizes events
carry (``defaults.EVENT_MESSAGE_CHARS`` / ``EVENT_TRACEBACK_CHARS``). ``safe_str(exc)`` is
``str(exc)`` that never raises (an exception whose ``__str__`` raises still reads).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from . import defaults
from .redaction import shown_url

__all__ = [
    "AiflowError",
    "AlreadyAnswered",
    "CellError",
    "CodeRejected",
    "ComponentFailed",
    "ComponentTimeout",
    "ConfigError",
    "ExportError",
    "InputTimeout",
    "InvalidInputs",
    "LLMUnavailable",
    "Parked",
    "RedisUnavailable",
    "RunCancelled",
    "RunError",
    "RunFailed",
    "RunNotFound",
    "RunStateError",
    "RunTimeout",
    "SerializationError",
    "Unavailable",
    "ValueTooLarge",
    "WaitNotFound",
    "WorkerShutdown",
    "WorkflowNotFound",
    "error_document",
    "event_error",
    "safe_str",
]


class AiflowError(Exception):
    """Base class of every error aiflow-nb raises on purpose."""


# --- authoring and configuration ------------------------------------------------------


class CellError(AiflowError, ValueError):
    """A ``%%component`` / ``%%workflow`` cell that does not compile or does not define
    exactly one function; nothing was defined or registered."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows: the message (and the cell's own error), not the magic's
        internals."""
        cause = self.__cause__
        lines = traceback.format_exception(cause) if cause is not None else []
        return [*"".join(lines).splitlines(), f"CellError: {self}"]


class CodeRejected(AiflowError):
    """Registered code failed its signature check, or is unsigned while a secret is set."""


class ConfigError(AiflowError):
    """A setting or environment variable has a value that cannot work."""


class InvalidInputs(AiflowError, TypeError):
    """Inputs that do not fit the workflow's signature, or an answer that does not fit its
    wait's schema; ``fields`` names each field that failed (``{"field", "message"}``)."""

    def __init__(self, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields


class InputTimeout(AiflowError, TimeoutError):
    """Nobody answered a ``wait_for_input`` / ``wait_for_event`` before its deadline; raised
    into the workflow where it waited (catch it like any error)."""

    def __init__(self, name: str, seconds: float | None = None) -> None:
        after = f" within {seconds:g} s" if seconds is not None else ""
        super().__init__(f"no answer to wait {name!r}{after}")
        self.name = name
        self.seconds = seconds


class SerializationError(AiflowError, TypeError):
    """A value that must be stored as JSON is not JSON-serialisable."""


class ValueTooLarge(AiflowError, ValueError):
    """A value to be stored (a run's inputs or output, a step's result) whose JSON is larger
    than ``AIFLOW_MAX_VALUE_BYTES``; nothing of it was written."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{what} is {_human(size)} of JSON{f' ({size:,} bytes)' if size >= 1024 else ''}, "
            f"over the limit of {_human(limit)} (AIFLOW_MAX_VALUE_BYTES={limit}); "
            "keep large data elsewhere (a file, object storage) and pass its location, "
            "or raise the limit"
        )
        self.what = what
        self.size = size
        self.limit = limit


def _human(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


class WorkflowNotFound(AiflowError, LookupError):
    """No workflow with that name is registered."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f"; known workflows: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"no workflow named {name!r}{hint}")
        self.name = name


# --- inside a run: one component call ---------------------------------------------------


class ComponentFailed(AiflowError):
    """A component failed after all its attempts; the original error is ``__cause__``."""

    def __init__(self, component: str, attempts: int, error: BaseException) -> None:
        super().__init__(
            f"component {component!r} failed after {attempts} attempt(s): "
            f"{type(error).__name__}: {safe_str(error)}"
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


# --- a run, seen from outside ---------------------------------------------------------


class RunError(AiflowError):
    """About one run: it failed, was cancelled, is unknown, has not ended in time, or is in
    a state that forbids the operation. ``except RunError`` around ``handle.result()``."""


class RunCancelled(RunError):
    """The run was cancelled."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} was cancelled")
        self.run_id = run_id


class RunFailed(RunError):
    """The run ended ``failed``; ``error`` holds the recorded error document (the full
    message; the exception's own message is cut to ``defaults.EVENT_MESSAGE_CHARS``)."""

    def __init__(self, run_id: str, error: dict[str, Any] | None) -> None:
        err = error or {}
        message = _cut(str(err.get("message", "")), defaults.EVENT_MESSAGE_CHARS)
        super().__init__(f"run {run_id} failed: {err.get('type', 'Error')}: {message}")
        self.run_id = run_id
        self.error = err


class RunNotFound(RunError, LookupError):
    """No run with that id exists in this namespace."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunStateError(RunError):
    """The run's state forbids the operation (e.g. resuming a completed run)."""


class AlreadyAnswered(RunStateError):
    """The wait was answered already: exactly one answer is recorded, the first."""

    def __init__(self, run_id: str, name: str) -> None:
        super().__init__(f"run {run_id}: wait {name!r} was answered already")
        self.run_id = run_id
        self.name = name


class WaitNotFound(RunError, LookupError):
    """The run has no open wait of that name (it is not waiting, or for something else)."""

    def __init__(self, run_id: str, name: str, open_waits: list[str]) -> None:
        now = f"; it waits for: {', '.join(open_waits)}" if open_waits else "; it waits for nothing"
        super().__init__(f"run {run_id} has no open wait named {name!r}{now}")
        self.run_id = run_id
        self.name = name


class RunTimeout(RunError, TimeoutError):
    """The run had not ended when a wait for it ran out (it goes on running)."""

    def __init__(self, run_id: str, status: str, seconds: float) -> None:
        super().__init__(f"run {run_id} still {status} after {seconds:g} s")
        self.run_id = run_id
        self.status = status
        self.seconds = seconds


# --- outages ------------------------------------------------------------------------------


class Unavailable(AiflowError):
    """A service the call depends on is unreachable or refusing; the same call may succeed
    later. ``except Unavailable`` to back off and retry."""


class ExportError(Unavailable):
    """Exporting traces failed: the endpoint is unreachable (or not an http(s) URL at all)
    or refused the request."""


class LLMUnavailable(Unavailable):
    """An LLM call failed on its provider and every fallback after their retries.

    ``errors`` lists ``(target, error)`` per provider tried; ``__cause__`` is the last error.
    """

    def __init__(
        self, operation: str, attempts: int, errors: list[tuple[str, BaseException]]
    ) -> None:
        tried = "; ".join(
            f"{target}: {type(err).__name__}: {safe_str(err)}" for target, err in errors
        )
        super().__init__(
            f"{operation} failed on every provider after {attempts} attempt(s) ({tried})"
        )
        self.operation = operation
        self.attempts = attempts
        self.errors = errors
        if errors:
            self.__cause__ = errors[-1][1]


class RedisUnavailable(Unavailable):
    """Redis could not be reached; the message names the URL (its password masked:
    ``shown_url``) and what to do."""

    def __init__(self, url: str, reason: str) -> None:
        url = shown_url(url)
        super().__init__(
            f"cannot reach Redis at {url}: {reason.strip().rstrip('.')}. Start that Redis, "
            "fix REDIS_URL, "
            "or unset REDIS_URL to use the embedded Redis (see `aiflow redis status`)."
        )
        self.url = url


# --- signals ------------------------------------------------------------------------------


class WorkerShutdown(BaseException):
    """Raised inside a worker to stop it; never swallowed by ``except Exception``."""


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in naming the failure when its ``__str__`` raises."""
    try:
        text = str(exc)
    except Exception as inner:  # a hostile __str__: the error must still be recorded
        return f"<{type(exc).__name__}.__str__ raised {type(inner).__name__}>"
    return text if isinstance(text, str) else repr(text)


class Parked(BaseException):
    """Raised by a wait reached for the first time: unwinds the attempt, which parks the
    run (status ``waiting``) instead of failing it. ``wait`` is the wait's description
    (name, kind, prompt, schema, deadline). Never swallowed by ``except Exception``."""

    def __init__(self, wait: dict[str, Any]) -> None:
        super().__init__(f"run parked at wait {wait.get('name')!r}")
        self.wait = wait


def error_document(exc: BaseException, mask: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Type, message and traceback of an exception, as a run's record keeps it.

    ``cause`` names the original error a ``ComponentFailed`` wraps (else None). The
    message is kept in full; in the traceback, each exception's own message line is cut
    to ``defaults.EVENT_MESSAGE_CHARS`` (the message is not stored twice). ``mask``
    (``redaction``: a run's secrets) is applied to the texts before anything is cut.
    """
    root = exc.error if isinstance(exc, ComponentFailed) else exc
    message = _writable(safe_str(exc))
    return {
        "type": type(exc).__name__,
        "message": mask(message) if mask is not None else message,
        "cause": type(root).__name__ if root is not exc else None,
        "traceback": _writable(_format(exc, mask)),
    }


def _writable(text: str) -> str:
    """``text`` as UTF-8 can hold it: a lone surrogate (bytes decoded with
    ``surrogateescape``, a file name from a non-UTF-8 file system) shown as its escape
    (``\\udce9``) instead of making the whole error unwritable."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def event_error(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (an ``error_document``) as events carry it: the message cut to
    ``defaults.EVENT_MESSAGE_CHARS`` and the traceback to ``EVENT_TRACEBACK_CHARS``
    (its start and end kept); ``truncated: true`` when anything was cut. The full text is
    in the run record's ``error``."""
    out, cut = dict(doc), False
    for key, limit in (
        ("message", defaults.EVENT_MESSAGE_CHARS),
        ("traceback", defaults.EVENT_TRACEBACK_CHARS),
    ):
        text = doc.get(key)
        if isinstance(text, str) and len(text) > limit:
            out[key], cut = _cut(text, limit, keep_end=key == "traceback"), True
    if not cut:
        return doc
    out["truncated"] = True
    return out


def _cut(text: str, limit: int, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    note = f" […{len(text) - limit:,} characters cut…] "
    if not keep_end:
        return text[:limit] + note
    head = limit // 4
    return text[:head] + note + text[len(text) - (limit - head) :]


def _format(exc: BaseException, mask: Callable[[str], str] | None = None) -> str:
    """``traceback.format_exception(exc)`` with each exception's message (``mask``ed
    first) cut to ``defaults.EVENT_MESSAGE_CHARS`` (causes, contexts and exception
    groups alike)."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    stack, seen = [te], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        text = getattr(item, "_str", None)  # the message as the stdlib formats it
        if isinstance(text, str) and mask is not None:
            text = item._str = mask(text)  # type: ignore[attr-defined]
        if isinstance(text, str) and len(text) > defaults.EVENT_MESSAGE_CHARS:
            cut = _cut(text, defaults.EVENT_MESSAGE_CHARS)
            item._str = cut  # type: ignore[attr-defined]
        stack += [e for e in (item.__cause__, item.__context__) if e is not None]
        stack += getattr(item, "exceptions", None) or []
    formatted = "".join(te.format())
    return mask(formatted) if mask is not None else formatted  # source lines, too
