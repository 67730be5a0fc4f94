"""``RunHandle``: a reader's view of one run, from any process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, cast

import pandas as pd
import redis

from .. import keys
from ..errors import RunCancelled, RunFailed, RunNotFound, RunTimeout
from ..events.follow import Follow
from ..events.model import Event
from ..events.reader import aread_events, read_events
from ..events.status import RunStatus
from ..ops import answer as _answer
from ..ops import submit as _submit
from ..ops.routing import waiting_reason
from ..ops.submit import Submission
from ..redaction import masked_inputs
from ..serialization import loads
from ..store import sync_redis
from ..store.outage import Outage
from ..store.replies import RawHash
from .gaps import build_gaps
from .spans import Span, build_spans, resolve_values, spans_dataframe

__all__ = ["RunHandle", "answered_by", "attach", "decode_record"]


def answered_by() -> str:
    """Who answers from this process, as ``input.received`` records it: ``notebook`` in a
    Jupyter kernel, else ``python``."""
    import sys

    if "ipykernel" in sys.modules:
        from IPython import get_ipython

        if getattr(get_ipython(), "kernel", None) is not None:
            return "notebook"
    return "python"


def decode_record(raw: Mapping[bytes, bytes]) -> dict[str, Any]:
    """A raw run hash as Python values (JSON fields parsed, numbers converted)."""
    rec: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    for name in ("inputs", "output", "error", "secret_args", "waits", "rerun_steps"):
        if name in rec:
            rec[name] = loads(rec[name])
    for name in ("created_at", "started_at", "ended_at"):
        if name in rec:
            rec[name] = float(rec[name])
    for name in ("attempt", "restarts"):
        rec[name] = int(rec.get(name, 0))
    return rec


def _left(deadline: float | None) -> float | None:
    """Seconds to ``deadline`` (a ``time.monotonic`` time; None: no deadline), at least 0."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


_ENDING = ("status", "output", "error")
_ENDING_RAW = tuple(name.encode() for name in _ENDING)


class RunHandle:
    """Status, result, events and spans of the run ``run_id``."""

    widget: Any = None
    """The live notebook widget last made to show this handle, if any."""

    def __init__(self, run_id: str, client: redis.Redis | None = None) -> None:
        self.run_id = run_id
        self._client = client
        self._tail: str | None = None
        """The ``run.queued`` id of a run this handle's process just submitted (its stream's
        end then): the first wait follows on from it, reading no status first."""

    @classmethod
    def submitted(cls, submission: Submission) -> RunHandle:
        """The handle of a run just queued by ``ops.submit.submit_run``."""
        handle = cls(submission.run_id)
        handle._tail = submission.queued
        return handle

    @property
    def client(self) -> redis.Redis:
        return self._client or sync_redis()

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunHandle) and other.run_id == self.run_id

    def __hash__(self) -> int:
        return hash(self.run_id)

    # --- state --------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """The run record: workflow, version, status, inputs, output, error, timestamps, ...
        (secret inputs masked: the record holds them only while the run may need them)."""
        raw = cast(RawHash, self.client.hgetall(keys.run(self.run_id)))
        if not raw:
            raise RunNotFound(self.run_id)
        rec = decode_record(raw)
        if "inputs" in rec:
            public = masked_inputs(rec["inputs"], rec.get("secret_args") or ())
            rec["inputs"] = rec["inputs"] if public is None else public
        return rec

    def _ending(self) -> dict[str, Any]:
        """The fields ``result`` needs of the record (status, output, error), decoded as
        ``record()`` decodes them: one HMGET, not the whole record (inputs parsed and
        masked for nothing)."""
        raw = cast("list[bytes | None]", self.client.hmget(keys.run(self.run_id), *_ENDING))
        if raw[0] is None:
            raise RunNotFound(self.run_id)
        return decode_record({k: v for k, v in zip(_ENDING_RAW, raw, strict=True) if v is not None})

    @property
    def status(self) -> str:
        """queued, running, waiting, completed, failed or cancelled."""
        raw = cast("bytes | None", self.client.hget(keys.run(self.run_id), "status"))
        if raw is None:
            raise RunNotFound(self.run_id)
        return str(raw.decode())

    @property
    def workflow(self) -> str:
        return str(self.record()["workflow"])

    @property
    def waiting(self) -> str | None:
        """While the run is queued and no live worker can execute it: why, and what to do
        (``no live worker serves workflow 'x' (version v): ...``); else None."""
        return waiting_reason(self.record(), self.client)

    @property
    def waits(self) -> list[dict[str, Any]]:
        """The run's open waits while it is ``waiting``: name, kind (input, event, sleep),
        prompt, JSON schema, since and deadline (epoch s); else ``[]``."""
        return list(_answer.open_waits(self.record()).values())

    def respond(self, name: str, value: Any) -> None:
        """Answer the run's ``wait_for_input(name)`` (see ``aiflow_nb.respond``)."""
        _answer.respond(self.run_id, name, value, by=answered_by(), client=self.client)

    def send(self, name: str, value: Any = None) -> None:
        """Send the signal ``name`` to the run's ``wait_for_event(name)``."""
        _answer.send(self.run_id, name, value, by=answered_by(), client=self.client)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the end of the run; its output, or ``RunFailed`` / ``RunCancelled``.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        left = timeout  # as given: a RunTimeout says it
        while True:
            end = self._follow_to_end(left)
            if end is not None and end.type == "run.completed" and "output" in end.data:
                return end.data["output"]  # what the record holds (a large one: a reference)
            # the run ended: read it, through an outage
            rec = self._outage(left).call(self._ending)
            if rec["status"] == RunStatus.COMPLETED:
                return rec.get("output")
            if rec["status"] == RunStatus.CANCELLED:
                raise RunCancelled(self.run_id)
            if rec["status"] == RunStatus.FAILED:
                raise RunFailed(self.run_id, rec.get("error"))
            # failed, and resumed since by someone before its status was read: follow on
            left = _left(deadline)

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends; return its status (``RunTimeout`` after ``timeout`` s,
        saying why the run waits when no live worker can take it)."""
        self._follow_to_end(timeout)
        return self._outage(timeout).call(lambda: self.status)

    def _follow_to_end(self, timeout: float | None) -> Event | None:
        """Block until the run ends (``wait``, less reading its status); the last run end
        event read on the way, if any (none when the run had ended before)."""
        tail, self._tail = self._tail, None  # once: a later wait may follow a resumed run
        end: Event | None = None
        try:
            follow = Follow(self.run_id, replay=False, timeout=timeout, ends_only=True, tail=tail)
            for batch in follow.batches(self.client):
                for event in batch:
                    if event.terminal:
                        end = event
        except RunTimeout as exc:
            waiting = self.waiting
            if waiting:
                exc.args = (f"{exc.args[0]}: {waiting}",)
            raise
        return end

    def _outage(self, timeout: float | None) -> Outage:
        return Outage(f"waiting for run {self.run_id}", patience=timeout)

    # --- events and spans -------------------------------------------------------
    def events(self, after: str | None = None, follow: bool = True) -> Iterator[Event]:
        """Replay every event after ``after``, then follow live until the run ends.

        Events are as stored: a large input, output or step result is an ``<name>_ref``
        (``events/refs.py``; ``record()`` and ``spans()`` hold the values)."""
        return read_events(self.run_id, after=after, follow=follow, client=self._client)

    def aevents(self, after: str | None = None, follow: bool = True) -> AsyncIterator[Event]:
        """Async twin of ``events``."""
        return aread_events(self.run_id, after=after, follow=follow)

    def spans(self) -> list[Span]:
        """The run's spans so far (running ones included), with their inputs and output
        (large ones, which events only refer to, read from the record and journal)."""
        spans = list(build_spans(self.events(follow=False)).values())
        resolve_values(spans, self.run_id, self.client)
        return spans

    def to_pandas(self) -> pd.DataFrame:
        """One row per span: id, parent, name, status, start, end, duration, attempts,
        cached, replayed, error, and for LLM spans model, tokens and cost (``SPAN_COLUMNS``);
        then one ``waiting`` row per gap between two attempts of a resumed run."""
        events = list(self.events(follow=False))
        return spans_dataframe(build_spans(events).values(), build_gaps(events))

    # --- control --------------------------------------------------------------
    def cancel(self) -> str:
        """Cancel the run (queued: at once; running: through its worker)."""
        return _submit.cancel(self.run_id, self.client)

    def resume(self) -> RunHandle:
        """Resume an interrupted or failed run (see ``aiflow_nb.resume``)."""
        from .start import resume  # start builds on this module

        return resume(self.run_id)

    def rerun(
        self, inputs: dict[str, Any] | None = None, steps: Iterable[str] | None = None
    ) -> RunHandle:
        """A new run of this finished run's workflow replaying what is still valid (see
        ``aiflow_nb.rerun``)."""
        from .rerun import rerun  # rerun builds on this module

        return rerun(self, inputs=inputs, steps=steps)

    # --- display ----------------------------------------------------------------
    def _summary(self) -> str:
        try:
            rec = self.record()
        except RunNotFound:
            return f"run {self.run_id}: not found"
        return f"run {self.run_id} · {rec.get('workflow')} · {rec.get('status')}"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from ..notebook.display import snapshot_text

        try:
            p.text(snapshot_text(self))
        except RunNotFound:
            p.text(self._summary())

    def _repr_html_(self) -> str:
        """An HTML snapshot: status, span tree, progress, streamed text, error, output."""
        from ..notebook.display import snapshot_html

        return snapshot_html(self)

    def _ipython_display_(self) -> None:
        """In a Jupyter kernel a live widget, elsewhere a text/HTML snapshot."""
        from ..notebook.display import display_run

        display_run(self)


def attach(run_id: str) -> RunHandle:
    """A handle to an existing run, from any process; ``RunNotFound`` if there is none."""
    handle = RunHandle(run_id)
    handle.status  # noqa: B018 - raises RunNotFound for an unknown id
    return handle
