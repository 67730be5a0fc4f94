"""The event log: one Redis Stream per run; entry id = event id."""

from .follow import Follow
from .model import Event, EventType
from .reader import aread_events, read_events
from .status import TERMINAL, TERMINAL_EVENTS, RunStatus
from .writer import EventWriter

__all__ = [
    "TERMINAL",
    "TERMINAL_EVENTS",
    "Event",
    "EventType",
    "EventWriter",
    "Follow",
    "RunStatus",
    "aread_events",
    "read_events",
]
