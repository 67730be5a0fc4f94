"""One exception hierarchy: the groups a caller catches, the tree its docstring draws."""

from __future__ import annotations

import re

import pytest

import aiflow_nb
import aiflow_nb.api
from aiflow_nb import errors
from aiflow_nb.api.errors import ApiError

SIGNALS = frozenset({"WorkerShutdown", "Parked"})
"""BaseExceptions that unwind a run or a worker: no ``except Exception`` may swallow them."""

CLASSES = {
    name: value
    for name in errors.__all__
    if isinstance(value := getattr(errors, name), type) and issubclass(value, BaseException)
}


def _drawn_tree() -> dict[str, str]:
    """class -> parent, read from the box drawing in the module docstring."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^\s*(?:[│ ]*[├└]── )?([A-Z]\w+)\s", line + " ")
        if not found or found.group(1) not in CLASSES or line.strip().startswith("``"):
            continue
        depth = found.start(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[found.group(1)] = stack[-1][1]
        stack.append((depth, found.group(1)))
    return parents


def test_the_docstring_draws_every_class_under_its_real_base() -> None:
    drawn = _drawn_tree()
    exceptions = set(CLASSES) - {"AiflowError", *SIGNALS}
    assert set(drawn) == exceptions
    for name, parent in drawn.items():
        assert CLASSES[name].__bases__[0] is CLASSES[parent], (name, parent)


def test_every_error_is_an_aiflow_error_but_the_signals() -> None:
    for name, cls in CLASSES.items():
        assert issubclass(cls, errors.AiflowError) == (name not in SIGNALS), name
    for name in SIGNALS:
        assert issubclass(CLASSES[name], BaseException)
        assert not issubclass(CLASSES[name], Exception)  # no `except Exception` eats it


@pytest.mark.parametrize(
    ("error", "group"),
    [
        (errors.RunFailed("r", {"type": "ValueError", "message": "x"}), errors.RunError),
        (errors.RunCancelled("r"), errors.RunError),
        (errors.RunNotFound("r"), errors.RunError),
        (errors.RunStateError("run r is completed"), errors.RunError),
        (errors.RunTimeout("r", "running", 2.0), errors.RunError),
        (errors.RedisUnavailable("redis://x", "refused"), errors.Unavailable),
        (errors.LLMUnavailable("chat", 3, [("openai:gpt", OSError("down"))]), errors.Unavailable),
        (errors.ExportError("cannot reach OTLP endpoint"), errors.Unavailable),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_groups_catch_what_they_name(error: Exception, group: type[Exception]) -> None:
    with pytest.raises(group):
        raise error


def test_builtin_bases_still_catch() -> None:
    """Grouping kept every class's standard base: old ``except`` clauses still work."""
    assert issubclass(errors.RunNotFound, LookupError)
    assert issubclass(errors.WorkflowNotFound, LookupError)
    assert issubclass(errors.RunTimeout, TimeoutError)
    assert issubclass(errors.ComponentTimeout, TimeoutError)
    assert issubclass(errors.InvalidInputs, TypeError)
    assert issubclass(errors.SerializationError, TypeError)
    assert issubclass(errors.CellError, ValueError)
    assert str(errors.RunTimeout("r1", "running", 2)) == "run r1 still running after 2 s"


def test_api_error_lives_with_the_api_and_is_an_aiflow_error() -> None:
    assert issubclass(ApiError, errors.AiflowError)
    assert not hasattr(errors, "ApiError") and "ApiError" not in aiflow_nb.__all__
    assert aiflow_nb.api.ApiError is ApiError
    refused = ApiError(422, "invalid_input", "bad", fields=[{"field": "x", "message": "m"}])
    assert (refused.status, refused.code, refused.headers, refused.fields) == (
        422,
        "invalid_input",
        {},
        [{"field": "x", "message": "m"}],
    )


def test_error_document_names_the_cause_a_component_failure_wraps() -> None:
    try:
        raise errors.ComponentFailed("fetch", 3, ConnectionError("reset"))
    except errors.ComponentFailed as exc:
        doc = errors.error_document(exc)
    assert doc["type"] == "ComponentFailed" and doc["cause"] == "ConnectionError"
    assert "reset" in doc["message"] and "ComponentFailed" in doc["traceback"]
    assert errors.error_document(ValueError("x"))["cause"] is None
