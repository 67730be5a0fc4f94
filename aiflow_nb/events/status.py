"""The status vocabularies: a run record's ``status`` (``RunStatus``) and a span's, as
readers fold it from events (``SpanStatus``)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CANCELLABLE",
    "RECORDED",
    "RESUMABLE",
    "STATUS_OF_EVENT",
    "TERMINAL",
    "TERMINAL_EVENTS",
    "RunStatus",
    "SpanStatus",
]


class RunStatus(StrEnum):
    """A run's status. A ``str``, so it compares equal to the text stored in Redis."""

    QUEUED = "queued"
    """Recorded and on its version's queue (new, resumed, recovered or handed back)."""
    RUNNING = "running"
    """A worker holds its lease and executes it."""
    WAITING = "waiting"
    """Parked at a wait (``wait_for_input``, ``wait_for_event``, ``sleep``): no worker, no
    lease, no slot; an answer, a signal or its timer puts it back on the queue. Not
    terminal, and it never expires."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"
    """Never stored: what ``cancel()`` answers while the run's worker has yet to stop it."""


RECORDED: tuple[str, ...] = tuple(s.value for s in RunStatus if s != RunStatus.CANCELLING)
"""The statuses a run record can hold, in lifecycle order (filters, choices)."""

TERMINAL: frozenset[str] = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
"""Statuses a run ends in (a failed one may still be resumed)."""

CANCELLABLE: frozenset[str] = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING})
"""Statuses a cancel applies to (what the dashboard's and the widget's Cancel enable on)."""
RESUMABLE: frozenset[str] = frozenset({RunStatus.FAILED})
"""Statuses a resume from a person applies to (an interrupted run resumes by itself)."""

TERMINAL_EVENTS: frozenset[str] = frozenset(f"run.{status}" for status in TERMINAL)
"""Event types that end a run's stream for its followers (unless it is resumed later)."""

STATUS_OF_EVENT: dict[str, RunStatus] = {
    "run.queued": RunStatus.QUEUED,
    "run.started": RunStatus.RUNNING,
    "run.resumed": RunStatus.RUNNING,
    "run.waiting": RunStatus.WAITING,
    **{f"run.{status}": RunStatus(status) for status in TERMINAL},
}
"""The run status each ``run.*`` event announces."""


class SpanStatus(StrEnum):
    """A span's status as readers fold it from its events."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """Still running when its run ended or was resumed (a crash cut it off)."""
    WAITING = "waiting"
    """Not a span: a gap between two attempts of a run (``access.gaps``)."""
