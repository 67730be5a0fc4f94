"""Answering parked runs from Python: ``aiflow_nb.respond`` and ``aiflow_nb.send``
(``ops/answer.py`` does the write; this records who answered)."""

from __future__ import annotations

from typing import Any

from ..ops import answer as _answer
from .handle import answered_by

__all__ = ["respond", "send"]


def respond(run_id: str, name: str, value: Any) -> None:
    """Answer run ``run_id``'s ``wait_for_input(name)`` with ``value``; the run resumes.

    ``InvalidInputs`` (naming the fields) when the value does not fit the wait's schema,
    ``AlreadyAnswered`` for a second answer, ``WaitNotFound`` when it waits for no such
    input, ``RunNotFound`` for an unknown run."""
    _answer.respond(run_id, name, value, by=answered_by())


def send(run_id: str, name: str, value: Any = None) -> None:
    """Send the signal ``name`` to run ``run_id``'s ``wait_for_event(name)``."""
    _answer.send(run_id, name, value, by=answered_by())
