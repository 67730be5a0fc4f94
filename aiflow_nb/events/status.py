"""The one run-status vocabulary: what a run record's ``status`` field holds."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL", "TERMINAL_EVENTS", "RunStatus"]


class RunStatus(StrEnum):
    """A run's status. A ``str``, so it compares equal to the text stored in Redis."""

    QUEUED = "queued"
    """Recorded and on its version's queue (new, resumed, recovered or handed back)."""
    RUNNING = "running"
    """A worker holds its lease and executes it."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"
    """Never stored: what ``cancel()`` answers while the run's worker has yet to stop it."""


TERMINAL: frozenset[str] = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
"""Statuses a run ends in (a failed one may still be resumed)."""

TERMINAL_EVENTS: frozenset[str] = frozenset(f"run.{status}" for status in TERMINAL)
"""Event types that end a run's stream for its followers (unless it is resumed later)."""
