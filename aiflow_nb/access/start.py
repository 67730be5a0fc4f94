"""Starting runs from Python: submission wrapped in handles, and the in-process worker.

Installs itself as ``Workflow.start``'s starter (an authoring hook), so authoring never
imports the layers above it.
"""

from __future__ import annotations

from typing import Any

from ..authoring.workflow import Workflow, install_starter
from ..ops import submit as _submit
from ..ops.local import ensure_local_worker
from .handle import RunHandle

__all__ = ["resume", "start"]


def start(wf: Workflow[Any, Any], inputs: dict[str, Any]) -> RunHandle:
    """Queue a run of ``wf`` with bound ``inputs``; a worker (in this process if no live
    worker can execute it, see ``ops/local.py``) executes it."""
    submission = _submit.submit_run(
        wf.name, inputs, secret_args=wf.secret_args, code=wf.code_bundle, retention=wf.retention
    )
    ensure_local_worker(workflow=wf.name, code=wf.code_bundle is not None)
    return RunHandle.submitted(submission)


def resume(run_id: str) -> RunHandle:
    """Queue an interrupted or failed run again; journaled steps return their recorded
    results (``span.replayed``) and only unfinished steps execute.

    Raises ``RunStateError`` for a completed or cancelled run, or one whose worker still
    holds its lease (it resumes by itself once that lease expires).
    """
    handle = RunHandle(_submit.resume(run_id))
    rec = handle.record()
    ensure_local_worker(workflow=rec["workflow"], code=bool(rec.get("code")))
    return handle


install_starter(start)
