"""Rerunning a finished run from Python: ``ops/fork.py``'s write wrapped in a handle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..ops import fork as _fork
from ..ops.local import ensure_local_worker
from .handle import RunHandle

__all__ = ["rerun"]


def rerun(
    run_id: str | RunHandle,
    *,
    inputs: dict[str, Any] | None = None,
    steps: Iterable[str] | None = None,
) -> RunHandle:
    """A new run of a finished run's workflow, with its current code and the source's
    inputs updated by ``inputs``, that pays only for what changed: each step replays
    from the source's journal (``span.replayed`` with ``replayed_from``) unless ``steps``
    names it (a component name or a step key; what it calls executes too), its
    component's code changed, or its arguments differ (so what a changed step feeds
    executes by itself). Waits ask again. ``forked_from`` in the new run's record.

    Raises ``RunNotFound``, ``RunStateError`` for a source still queued, running or
    waiting, ``InvalidInputs`` for an unknown step or inputs the workflow does not take.
    """
    source = run_id.run_id if isinstance(run_id, RunHandle) else run_id
    handle = RunHandle(_fork.fork(source, inputs, steps))
    rec = handle.record()
    ensure_local_worker(workflow=rec["workflow"], code=bool(rec.get("code")))
    return handle
