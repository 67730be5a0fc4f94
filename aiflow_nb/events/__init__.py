"""The event log: one Redis Stream per run; entry id = event id."""

from .model import TERMINAL, Event, EventType
from .reader import aread_events, read_events
from .writer import EventWriter

__all__ = ["TERMINAL", "Event", "EventType", "EventWriter", "aread_events", "read_events"]
