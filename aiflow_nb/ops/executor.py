"""Execute one run: load its record and journal, run the workflow as the root span,
and write the terminal event and record. Used by every worker, in or out of process."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aredis

from .. import keys
from ..authoring import registry
from ..authoring.workflow import Workflow
from ..errors import AiflowError, WorkerShutdown, error_document
from ..events.status import TERMINAL, RunStatus
from ..events.writer import EventWriter
from ..runtime.context import Frame, RunContext, run_var
from ..runtime.invocation import Call, run_async, run_sync
from ..serialization import dumps, loads
from ..store import sync_redis
from ..store.replies import RawHash
from . import leases

__all__ = ["RunControl", "RunWriter", "execute", "lookup"]

log = logging.getLogger("aiflow_nb.executor")


@dataclass
class RunControl:
    """Why a run's task was cancelled: ``"cancel"`` ends it cancelled; any other reason
    (``"handback"``, ``"lost"``, ``"abort"``) leaves it for another worker to resume."""

    reason: str = "cancel"


class RunWriter(EventWriter):
    """The run's writer. Once the run is stopped on this worker (cancelled, handed back,
    its lease lost), a thread still running a sync workflow gets ``WorkerShutdown`` at its
    next event or journal write, so it stops instead of running on beside the worker that
    resumes the run."""

    def __init__(
        self, run_id: str, client: aredis.Redis, loop: asyncio.AbstractEventLoop, owner: str = ""
    ) -> None:
        super().__init__(run_id, client, loop)
        self.owner = owner
        """The worker holding the run's lease (released with the run's terminal write)."""
        self.stopped = False
        self._loop_thread = threading.get_ident()

    def _check(self) -> None:
        if self.stopped and threading.get_ident() != self._loop_thread:
            raise WorkerShutdown(f"run {self.run_id} was stopped on this worker")

    def emit(self, type: str, **fields: Any) -> None:
        self._check()
        super().emit(type, **fields)

    def journal(self, step_key: str, document: bytes) -> None:
        self._check()
        super().journal(step_key, document)


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def _finish(
    writer: EventWriter, status: RunStatus, data: dict[str, Any], record: dict[str, Any]
) -> None:
    """The run's terminal write: record, running set, lease (if still ours) and the
    ``run.<status>`` event, in one flush, so whoever sees the end may resume the run at once."""
    writer.record(status=status, ended_at=time.time(), **record)
    writer.raw("srem", keys.running(), writer.run_id)
    if isinstance(writer, RunWriter) and writer.owner:
        writer.raw("eval", leases.RELEASE, 1, keys.run_lease(writer.run_id), writer.owner)
    writer.emit(f"run.{status}", data=data)


def lookup(workflow: str, code: str | None = None) -> Workflow[Any, Any]:
    """The workflow a worker executes for a run: the registered code bundle the run was
    started with, else this process's workflow of that name."""
    if code:
        from .code import load_workflow

        return load_workflow(code)
    return registry.get(workflow)


async def execute(
    run_id: str, worker_id: str, client: aredis.Redis, control: RunControl | None = None
) -> str:
    """Execute ``run_id`` to its end (or until cancelled); return its final status."""
    control = control or RunControl()
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.run(run_id))
    pipe.hgetall(keys.run_journal(run_id))
    raw_rec, raw_journal = cast(tuple[RawHash, RawHash], await pipe.execute())
    rec = _decode(raw_rec)
    if not rec:
        log.warning("run %s has no record; skipped", run_id)
        return "missing"
    if rec.get("status") in TERMINAL:  # a stale queue entry (resume() re-queues first)
        return rec["status"]
    loop = asyncio.get_running_loop()
    writer = RunWriter(run_id, client, loop, owner=worker_id)
    # counted in the same flush as run.started/run.resumed: an attempt killed before its
    # start reached Redis left no trace, so it is not counted (or reported resumed)
    attempt = int(rec.get("attempt") or 0) + 1
    journal = {k.decode(): v for k, v in raw_journal.items()}
    started_at = rec.get("started_at") or time.time()
    writer.record(
        status=RunStatus.RUNNING, worker=worker_id, started_at=started_at, attempt=attempt
    )
    writer.raw("sadd", keys.running(), run_id)
    resumed = attempt > 1
    writer.emit(
        "run.resumed" if resumed else "run.started",
        name=rec["workflow"],
        data={"worker": worker_id, "attempt": attempt, "journaled": len(journal)},
    )
    if rec.get("cancel_requested"):
        _finish(writer, RunStatus.CANCELLED, {}, {})
        await writer.flush()
        return RunStatus.CANCELLED
    try:
        code = rec.get("code")  # loading registered code reads Redis: off the loop
        wf = (
            await asyncio.to_thread(lookup, rec["workflow"], code)
            if code
            else lookup(rec["workflow"])
        )
    except AiflowError as exc:
        log.error(
            "run %s of workflow %s failed before it started: %s", run_id, rec["workflow"], exc
        )
        doc = error_document(exc)
        _finish(writer, RunStatus.FAILED, {"error": doc}, {"error": dumps(doc)})
        await writer.flush()
        return RunStatus.FAILED
    ctx = RunContext(
        run_id=run_id,
        workflow=wf.name,
        writer=writer,
        loop=loop,
        sync_client=sync_redis(),
        async_client=client,
        journal=journal,
        attempt=attempt,
        secrets=wf.secret_args,
    )
    status = await _run_root(ctx, wf, loads(rec.get("inputs") or "{}"), control)
    await writer.flush()
    return status


async def _run_root(
    ctx: RunContext, wf: Workflow[Any, Any], inputs: dict[str, Any], control: RunControl
) -> str:
    token = run_var.set(ctx)
    call = Call(wf, (), inputs, ctx, Frame.root(wf.name), journaled=False)
    t0 = time.time()
    try:
        if wf.is_async:
            output = await run_async(call)
        else:
            output = await asyncio.to_thread(run_sync, call)
    except asyncio.CancelledError:
        if isinstance(ctx.writer, RunWriter):
            ctx.writer.stopped = True
        if control.reason != "cancel":
            if control.reason == "handback":  # journaled steps land before another worker
                await ctx.writer.flush()  # loads the journal
            raise
        _finish(ctx.writer, RunStatus.CANCELLED, {}, {})
        return RunStatus.CANCELLED
    except Exception as exc:
        doc = error_document(exc)
        _finish(ctx.writer, RunStatus.FAILED, {"error": doc}, {"error": dumps(doc)})
        return RunStatus.FAILED
    finally:
        run_var.reset(token)
    _finish(
        ctx.writer,
        RunStatus.COMPLETED,
        {"output": output, "duration": time.time() - t0},
        {"output": dumps(output)},
    )
    return RunStatus.COMPLETED
