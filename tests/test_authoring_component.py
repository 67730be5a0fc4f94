"""The decorators' public signatures: policy arguments precisely typed, for editors."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_overloads

import pytest

from aiflow_nb import Component, component, workflow

POLICY_ARGS = ("retry", "cache", "timeout", "fallback")


def _annotations(fn: Callable[..., Any]) -> dict[str, str]:
    params = inspect.signature(fn).parameters
    return {name: str(p.annotation) for name, p in params.items() if name in POLICY_ARGS}


@pytest.mark.parametrize(
    "fn",
    [*get_overloads(component), component, *get_overloads(workflow), workflow],
    ids=lambda f: f.__qualname__,
)
def test_decorator_policy_arguments_are_not_any(fn: Callable[..., Any]) -> None:
    for name, annotation in _annotations(fn).items():
        assert "Any" not in annotation, f"{name}: {annotation}"


def test_decorator_overload_names_the_policy_types() -> None:
    factory = get_overloads(component)[1]
    assert _annotations(factory) == {
        "retry": "RetryPolicy | int | RetrySpec | None",
        "cache": "CachePolicy | float | bool | None",
        "timeout": "TimeoutPolicy | float | None",
        "fallback": "object",
    }
    assert _annotations(get_overloads(workflow)[1]) == {
        "retry": "RetryPolicy | int | RetrySpec | None",
        "timeout": "TimeoutPolicy | float | None",
    }


def test_fluent_policy_methods_are_not_any() -> None:
    for method in (Component.with_retry, Component.with_fallback, Component.with_cache):
        hints = {n: str(p.annotation) for n, p in inspect.signature(method).parameters.items()}
        assert not [n for n, a in hints.items() if "Any" in a], (method, hints)
    assert str(inspect.signature(Component.with_retry).parameters["options"].annotation) == (
        "Unpack[RetryOptions]"
    )
