"""Context variables: the run being executed and the span being inside."""

from __future__ import annotations

import asyncio
import bisect
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

from ..events.writer import EventWriter
from ..serialization import digest

__all__ = ["Frame", "RunContext", "current_frame", "current_run", "frame_var", "run_var"]


@dataclass(slots=True)
class Frame:
    """One span: its deterministic step key and the id derived from it."""

    key: str
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    """Set by the call itself (``set_attributes``); sent with its ``span.completed``/``failed``."""

    @classmethod
    def root(cls, workflow: str) -> Frame:
        return cls(key=workflow, span_id=digest(workflow), parent_id=None)


@dataclass
class RunContext:
    """Everything a component call inside a run needs."""

    run_id: str
    workflow: str
    writer: EventWriter
    loop: asyncio.AbstractEventLoop
    sync_client: redis.Redis
    async_client: aredis.Redis
    journal: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    secrets: frozenset[str] = frozenset()
    seed: dict[str, Any] = field(default_factory=dict)
    """A rerun's copy of its source run's journal (``keys.run_seed``); empty otherwise."""
    forked_from: str | None = None
    """The source run of a rerun, else None."""
    rerun_steps: frozenset[str] = frozenset()
    """Component names and step keys a rerun executes whatever the seed holds."""
    _sorted: dict[int, list[str]] = field(default_factory=dict)
    """Sorted keys of ``journal`` / ``seed`` (by ``id``), for ``nested``."""
    _named: set[str] = field(default_factory=set)
    """Keys of the steps executing because ``rerun_steps`` names them: what they call
    executes too."""
    _children: dict[str, dict[str, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def child(self, parent: Frame, name: str) -> Frame:
        """The next child span of ``parent`` named ``name`` (index counted per name)."""
        with self._lock:
            counter = self._children.get(parent.key)
            if counter is None:  # not setdefault: no dict made per call
                counter = self._children[parent.key] = {}
            index = counter.get(name, 0)
            counter[name] = index + 1
        key = f"{parent.key}/{name}#{index}"
        return Frame(key=key, span_id=digest(key), parent_id=parent.span_id)

    def rerun_named(self, key: str, name: str) -> bool:
        """True when a rerun must execute step ``key`` of component ``name``: it is named
        in ``rerun_steps`` or nested under a step that is (noted for its own children)."""
        named = name in self.rerun_steps or key in self.rerun_steps
        with self._lock:
            named = named or any(key.startswith(k + "/") for k in self._named)
            if named:
                self._named.add(key)
        return named

    def nested(self, source: dict[str, Any], key: str) -> list[Any]:
        """The entries of ``source`` (this run's journal or its seed, as loaded) of the
        steps nested under step ``key``: what replaying ``key`` replays with it."""
        with self._lock:
            ordered = self._sorted.get(id(source))
            if ordered is None:
                ordered = self._sorted[id(source)] = sorted(source)
        prefix = key + "/"
        i = bisect.bisect_left(ordered, prefix)
        found = []
        while i < len(ordered) and ordered[i].startswith(prefix):
            found.append(source[ordered[i]])
            i += 1
        return found

    def on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False


_run: ContextVar[RunContext | None] = ContextVar("aiflow_run", default=None)
_frame: ContextVar[Frame | None] = ContextVar("aiflow_frame", default=None)


def current_run() -> RunContext | None:
    """The run this code executes in, or None outside any run."""
    return _run.get()


def current_frame() -> Frame | None:
    """The span this code executes in, or None outside any run."""
    return _frame.get()


run_var = _run
frame_var = _frame
