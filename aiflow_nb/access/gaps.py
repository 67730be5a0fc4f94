"""The gaps of a resumed run: the time between one attempt's end and the next one's start.

An attempt whose worker died (or handed the run back) ends at its last sign of life in
the stream (the crash itself writes nothing); the run then *waits for a worker* until
``run.resumed``. A run that failed and was resumed later *sat failed* from ``run.failed``
until ``run.resumed``. A run parked at a wait (``run.waiting``) *waits for* its input,
event or time until ``run.resumed`` (``parked``). Waiting and parked time count in a run's
duration (waiting for a worker also as its ``waiting`` seconds); time sat failed does not
(``idle``). ``Gaps`` folds events one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..events.model import Event

__all__ = ["FAILED_LABEL", "WAITING_LABEL", "Gap", "Gaps", "build_gaps"]

WAITING_LABEL = "waiting for a worker"
FAILED_LABEL = "failed, until resumed"

_ENDS = frozenset({"run.completed", "run.failed", "run.cancelled"})
_NOT_THE_ATTEMPT = frozenset({"run.queued", "notification", "input.received"})
"""Events written by others than the attempt (submit, the monitor): no sign of its life."""


@dataclass
class Gap:
    """One gap; ``end`` is None while the run still waits."""

    index: int
    start: float
    end: float | None = None
    failed: bool = False
    """The attempt before it ended ``failed`` (time sat failed, not part of the duration)."""
    attempt: int | None = None
    """The attempt that ended the gap (``run.resumed``'s)."""
    parked: str | None = None
    """What the run was parked for (``input 'approve'``, ``event 'go'``, ``time``), or None."""

    @property
    def key(self) -> str:
        """The gap's row key and span id (``gap:<n>``, never a span's digest)."""
        return f"gap:{self.index}"

    @property
    def label(self) -> str:
        if self.parked is not None:
            return "sleeping" if self.parked == "time" else f"waiting for {self.parked}"
        return FAILED_LABEL if self.failed else WAITING_LABEL

    def duration(self, now: float) -> float:
        return max(0.0, (self.end if self.end is not None else now) - self.start)


@dataclass
class Gaps:
    """The gaps of one run; ``apply`` each event in stream order."""

    items: list[Gap] = field(default_factory=list)
    alive: float | None = None
    """When the current (or last) attempt last showed a sign of life."""
    _failed_at: float | None = None
    _open: Gap | None = None

    def apply(self, e: Event) -> Gap | None:
        """Fold one event; the gap it opened or closed, if any."""
        if e.type == "run.resumed":
            return self._resumed(e)
        if e.type == "log" and e.data.get("recovered"):  # the monitor: the attempt is lost
            return self._lost()
        if e.type in _NOT_THE_ATTEMPT:
            return None
        self.alive = e.ts
        if e.type == "run.waiting":
            return self._parked(e)
        if e.type == "log" and e.data.get("handback"):
            return self._lost()
        if e.type in _ENDS:
            return self._ended(e)
        return None

    def _lost(self) -> Gap | None:
        if self._open is not None or self.alive is None:
            return None
        self._open = Gap(len(self.items), self.alive)
        self.items.append(self._open)
        return self._open

    def _parked(self, e: Event) -> Gap | None:
        kind, name = e.data.get("kind"), e.data.get("name")
        self._open = Gap(
            len(self.items), e.ts, parked="time" if kind == "sleep" else f"{kind} {name!r}"
        )
        self.items.append(self._open)
        return self._open

    def _ended(self, e: Event) -> Gap | None:
        self._failed_at = e.ts if e.type == "run.failed" else None
        gap, self._open = self._open, None
        if gap is not None:  # cancelled or failed while it waited
            gap.end = e.ts
        return gap

    def _resumed(self, e: Event) -> Gap | None:
        gap = self._open or self._lost_at(e)
        if gap is None:
            return None
        gap.end, gap.attempt = e.ts, e.data.get("attempt")
        self._open, self._failed_at, self.alive = None, None, e.ts
        return gap

    def _lost_at(self, e: Event) -> Gap | None:
        """The gap a ``run.resumed`` closes when nothing opened one (resumed by hand)."""
        start = self._failed_at if self._failed_at is not None else self.alive
        if start is None:
            return None
        gap = Gap(len(self.items), start, failed=self._failed_at is not None)
        self.items.append(gap)
        return gap

    # --- totals ---------------------------------------------------------------
    def waiting(self, now: float) -> float:
        """Seconds the run waited for a worker (part of its duration)."""
        return sum(g.duration(now) for g in self.items if not g.failed and g.parked is None)

    def parked(self, now: float) -> float:
        """Seconds the run was parked at its waits (part of its duration)."""
        return sum(g.duration(now) for g in self.items if g.parked is not None)

    def idle(self, now: float) -> float:
        """Seconds the run sat failed before a resume (not part of its duration)."""
        return sum(g.duration(now) for g in self.items if g.failed)


def build_gaps(events: Iterable[Event]) -> list[Gap]:
    """The gaps of a run's events, in order."""
    gaps = Gaps()
    for e in events:
        gaps.apply(e)
    return gaps.items
