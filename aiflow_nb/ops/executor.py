"""Execute one run: load its record and journal, run the workflow as the root span,
and write the terminal event and record (or, when it reaches a wait, park it: status
``waiting``, ``runtime/waits.py``). Used by every worker, in or out of process."""

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
from ..cancelling import RECANCEL
from ..config import settings
from ..errors import AiflowError, Parked, WorkerShutdown, error_document, event_error
from ..events.fence import OK, Fence, new_token
from ..events.refs import RECORD, value_fields
from ..events.status import TERMINAL, RunStatus
from ..events.writer import EventWriter
from ..redaction import masked_inputs
from ..runtime.context import Frame, RunContext, run_var
from ..runtime.invocation import Call, run_async, run_sync
from ..runtime.waits import journal_key
from ..serialization import dumps, loads
from ..store import sync_redis
from ..store.replies import RawHash
from . import leases, retention
from .recovery import QueueEntry

__all__ = ["RECANCEL", "RunControl", "RunWriter", "execute", "lookup", "stop"]

log = logging.getLogger("aiflow_nb.executor")


@dataclass
class RunControl:
    """Why a run's task was cancelled: ``"cancel"`` ends it cancelled; ``"overflow"`` ends
    it failed (its writer could not reach Redis for too long); any other reason
    (``"handback"``, ``"lost"``, ``"abort"``) leaves it for another worker to resume."""

    reason: str = "cancel"
    acknowledged: bool = False
    """The executor has seen the cancellation (``stop`` cancels again until it has)."""
    settled: bool = False
    """The run's last write (ended or parked) was applied with its queue entry acknowledged
    and deleted and its lease released: nothing is left for the worker to do."""
    route: tuple[str, str, str] | None = None
    """The run's version, workflow and code (its queue), once its record was read."""


def stop(task: asyncio.Task[Any], control: RunControl, reason: str) -> None:
    """Cancel a run's ``task`` for ``reason`` (see ``RunControl``), and cancel it again
    every ``RECANCEL`` s until the executor has seen it (``aiflow_nb.cancelling``: on
    Python 3.11 a cancellation can be swallowed), or the run would finish as if never
    cancelled (the second SIGTERM's abort did). Call it on the task's loop."""
    control.reason = reason
    if task.done():
        return
    task.cancel()
    if control.acknowledged:  # already unwinding: one cancellation interrupts its cleanup
        return
    loop = task.get_loop()

    def again() -> None:
        if not task.done() and not control.acknowledged:
            task.cancel()
            loop.call_later(RECANCEL, again)

    loop.call_later(RECANCEL, again)


class RunWriter(EventWriter):
    """The run's writer, fenced by the attempt's token (``events/fence.py``).

    Once the run is stopped on this worker (cancelled, handed back), a thread still
    running a sync workflow gets ``WorkerShutdown`` at its next event or journal write, so
    it stops instead of running on beside the worker that resumes the run. Once the
    attempt's token is lost, every thread gets it at its next write. A write after the
    lease went unrenewed for a while (``defaults.FENCE_TRUST``: the worker stalled) first
    re-checks the token with Redis, so no step starts on an attempt that was taken over
    (while that check goes unanswered, writes stay fenced but a step may start: _verify)."""

    def __init__(
        self,
        run_id: str,
        client: aredis.Redis,
        loop: asyncio.AbstractEventLoop,
        owner: str = "",
        fence: Fence | None = None,
    ) -> None:
        super().__init__(run_id, client, loop, fence)
        self.owner = owner
        """The worker executing this attempt."""
        self.workflow = ""
        """The run's workflow (names its index in ``{ns}:expiry``)."""
        self.retention = settings().retention
        """Seconds the run's keys live once it ends (``ops/retention.py``)."""
        self.inputs: str | None = None
        """The run's inputs (JSON) as its record holds them; their secrets are masked in
        the terminal write: the record keeps them only while the run may still need them."""
        self.entry: QueueEntry | None = None
        """The queue entry that brought the run (acknowledged by the run's last write)."""
        self.seeded = False
        """The run has a seed hash (a rerun): its retention expires that key too."""
        self.stopped = False
        self._loop_thread = threading.get_ident()

    def _check(self) -> None:
        fence = self.fence
        if fence is not None:
            if fence.lost:
                raise WorkerShutdown(
                    f"run {self.run_id}: this attempt ({fence.token}) lost its lease; "
                    "another attempt has the run"
                )
            if not fence.final and time.monotonic() >= fence.valid_until:
                self._verify(fence)
        if self.stopped and threading.get_ident() != self._loop_thread:
            raise WorkerShutdown(f"run {self.run_id} was stopped on this worker")

    def _verify(self, fence: Fence) -> None:
        """One round trip: is the token still current (renewing the lease)?"""
        state = leases.renew_now(fence)
        if state is None:  # no answer (Redis down, or this check timed out): nothing is
            # known. The batches stay fenced in Redis, so a taken-over attempt writes
            # nothing, but its next step's body may start (side effects) until a check
            # answers; checked again after _RECHECK
            fence.valid_until = time.monotonic() + _RECHECK
        elif state != OK:
            fence.lose()
            self._check()  # raises


_RECHECK = 1.0
"""Seconds before a writer that could not reach Redis to re-check its token tries again."""


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def _settle(writer: EventWriter) -> None:
    """In the run's last batch: acknowledge and delete its queue entry (so the worker
    needs no round trip of its own once the run ends or parks)."""
    entry = writer.entry if isinstance(writer, RunWriter) else None
    if entry is not None:
        writer.raw("xack", entry[0], keys.queue_group, entry[1])
        writer.raw("xdel", entry[0], entry[1])


async def _last_flush(writer: RunWriter, control: RunControl) -> None:
    """Write out the run's last batch; ``control.settled`` when it was applied (its queue
    entry acknowledged with it)."""
    await writer.flush()
    control.settled = writer.entry is not None and not writer.lost


def _finish(
    writer: EventWriter,
    status: RunStatus,
    data: dict[str, Any],
    record: dict[str, Any],
    keys_checked: bool = False,
) -> None:
    """The run's terminal write: record, running set, lease, queue entry and the
    ``run.<status>`` event, in one fenced batch, so whoever sees the end may resume the run
    at once. The record's inputs lose their secrets here (``secrets_dropped``);
    ``record``'s values (encoded, masked by the caller) are written as they are;
    ``keys_checked``: the caller checked ``data``'s keys for credential names."""
    if writer.fence is not None:
        writer.fence.final = True  # the heartbeat leaves the run alone from here on
    fields = dict(record)
    raw = writer.inputs if isinstance(writer, RunWriter) else None
    if raw and writer.redactor.may_hold(raw.encode()):
        # parsed again: the workflow may have changed its own copy
        public = masked_inputs(loads(raw), (), writer.redactor)
        if public is not None:
            fields.update(inputs=dumps(public), secrets_dropped=1)
    writer.record(status=status, ended_at=time.time(), **fields)
    writer.raw("srem", keys.running(keys.partition_of(writer.run_id)), writer.run_id)
    writer.release()
    _settle(writer)
    writer.emit(f"run.{status}", data=data, keys_checked=keys_checked)
    if isinstance(writer, RunWriter):  # every key of the run expires after its retention
        retention.expire_in_batch(writer, writer.workflow, writer.retention, writer.seeded)


def _fail(writer: EventWriter, exc: BaseException) -> None:
    """End the run ``failed`` with ``exc``: the record keeps its full error document, the
    ``run.failed`` event a copy cut to the event sizes (``errors.event_error``), both
    masked (before the cut, so no part of a secret is left at its edge)."""
    doc = error_document(exc, writer.mask)
    _finish(writer, RunStatus.FAILED, {"error": event_error(doc)}, {"error": dumps(doc)})


def _park(writer: EventWriter, wait: dict[str, Any], workflow: str) -> None:
    """The attempt's last write when the run parks at ``wait`` (``runtime/waits.py``): the
    wait opened in the journal, status ``waiting`` with the open wait, out of the running
    set, into the timer index when it has a deadline, the lease released and
    ``run.waiting``, in one fenced batch. The run holds nothing any more."""
    if writer.fence is not None:
        writer.fence.final = True  # the heartbeat leaves the run alone from here on
    name, deadline = wait["name"], wait.get("deadline")
    writer.journal(journal_key(name), dumps({"s": wait["since"], "d": deadline}))
    writer.record(status=RunStatus.WAITING, waits=dumps({name: wait}))
    writer.raw("srem", keys.running(keys.partition_of(writer.run_id)), writer.run_id)
    if deadline is not None:
        writer.raw("zadd", keys.timers(keys.partition_of(writer.run_id)), deadline, writer.run_id)
    writer.release()
    _settle(writer)
    writer.emit("run.waiting", name=workflow, data=wait)


def _retire(writer: RunWriter) -> None:
    """After the park: nothing more of this attempt is written (a sibling branch of an
    ``asyncio.gather`` still running gets ``WorkerShutdown`` at its next write)."""
    writer.stopped = True
    fence = writer.fence
    if fence is not None:
        fence.on_lost = None
        fence.lose()


def lookup(workflow: str, code: str | None = None) -> Workflow[Any, Any]:
    """The workflow a worker executes for a run: the registered code bundle the run was
    started with, else this process's workflow of that name."""
    if code:
        from .code import load_workflow

        return load_workflow(code)
    return registry.get(workflow)


async def execute(
    run_id: str,
    worker_id: str,
    client: aredis.Redis,
    control: RunControl | None = None,
    fence: Fence | None = None,
    taken: leases.Taken | None = None,
    entry: QueueEntry | None = None,
) -> str:
    """Execute ``run_id`` to its end (or until cancelled); return its final status.

    ``fence`` is the attempt's lease, taken by the caller (the worker, with ``taken``: what
    ``leases.take_and_read`` read with it); without one the lease is taken here (``held``
    is returned when another attempt holds it). Every write is fenced by its token; when
    it is lost the task ends with ``CancelledError`` and ``control.reason == "lost"``.
    ``entry``: the run's queue entry, acknowledged and deleted by its last write (then
    ``control.settled``)."""
    control = control or RunControl()
    if fence is None:
        fence = Fence(run_id, new_token(worker_id), int(settings().heartbeat_ttl * 1000))
        taken = await leases.take_and_read(client, fence)
        if taken is None:
            return "held"
    if taken is None:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.run(run_id))
        pipe.hgetall(keys.run_journal(run_id))
        pipe.hgetall(keys.run_seed(run_id))  # a rerun's copy of its source's journal
        taken = cast(tuple[RawHash, RawHash, RawHash], tuple(await pipe.execute()))
    raw_rec, raw_journal, raw_seed = taken
    rec = _decode(raw_rec)
    if not rec:
        log.warning("run %s has no record; skipped", run_id)
        return "missing"
    if rec.get("status") in TERMINAL or rec.get("status") == RunStatus.WAITING:
        return rec["status"]  # a stale queue entry (resume() re-queues first; a parked
        # run is re-queued by its answer or timer)
    loop = asyncio.get_running_loop()
    writer = RunWriter(run_id, client, loop, owner=worker_id, fence=fence)
    writer.workflow, writer.retention = (
        rec["workflow"],
        retention.retention_of(rec.get("retention")),
    )
    writer.inputs = rec.get("inputs") or "{}"
    writer.entry, writer.seeded = entry, bool(raw_seed)
    control.route = (rec.get("version", ""), rec["workflow"], rec.get("code", ""))
    _stop_on_loss(writer, fence, control, loop)
    try:
        journal = {k.decode(): v for k, v in raw_journal.items()}
        seed = {k.decode(): v for k, v in raw_seed.items()}
        return await _execute(run_id, worker_id, client, rec, (journal, seed), writer, control)
    except WorkerShutdown:
        if not fence.lost:
            raise
        control.reason, control.acknowledged = "lost", True
        raise asyncio.CancelledError from None


def _stop_on_loss(
    writer: RunWriter, fence: Fence, control: RunControl, loop: asyncio.AbstractEventLoop
) -> None:
    """Cancel the run's task at once when its token is found lost (by a refused batch,
    the heartbeat or a re-check, in any thread), or, with reason ``overflow``, when its
    writer holds more unsent writes than it may (Redis unreachable too long)."""
    task = asyncio.current_task()

    def cancel(reason: str) -> None:
        if reason != "lost" and (fence.lost or fence.final):
            return
        writer.stopped = True
        control.reason = reason
        if task is None:
            return
        if reason == "lost" and (control.acknowledged or task is asyncio.current_task()):
            return  # already stopping (or about to, by the WorkerShutdown being raised)
        stop(task, control, reason)

    def lost() -> None:
        writer.stopped = True
        if _on(loop):
            cancel("lost")
        else:
            loop.call_soon_threadsafe(cancel, "lost")

    fence.on_lost = lost
    writer.on_overflow = lambda: cancel("overflow")


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _execute(
    run_id: str,
    worker_id: str,
    client: aredis.Redis,
    rec: dict[str, str],
    journals: tuple[dict[str, bytes], dict[str, bytes]],
    writer: RunWriter,
    control: RunControl,
) -> str:
    # counted in the same flush as run.started/run.resumed: an attempt killed before its
    # start reached Redis left no trace, so it is not counted (or reported resumed)
    attempt = int(rec.get("attempt") or 0) + 1
    inputs = loads(writer.inputs or "{}")
    secret_args = loads(rec["secret_args"]) if rec.get("secret_args") else ()
    writer.redactor = writer.redactor.for_inputs(secret_args, inputs)  # before any event
    journal, seed = journals
    started_at = rec.get("started_at") or time.time()
    writer.record(
        status=RunStatus.RUNNING, worker=worker_id, started_at=started_at, attempt=attempt
    )
    writer.raw("sadd", keys.running(keys.partition_of(run_id)), run_id)
    resumed = attempt > 1
    writer.emit(
        "run.resumed" if resumed else "run.started",
        name=rec["workflow"],
        data={"worker": worker_id, "attempt": attempt, "journaled": len(journal)},
        keys_checked=True,  # its own keys
    )
    if rec.get("cancel_requested"):
        _finish(writer, RunStatus.CANCELLED, {}, {})
        await _last_flush(writer, control)
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
        _fail(writer, exc)
        await _last_flush(writer, control)
        return RunStatus.FAILED
    if not rec.get("retention") and wf.retention is not None:  # submitted without it
        writer.retention = wf.retention
    writer.redactor = writer.redactor.for_inputs(wf.secret_args, inputs)
    ctx = RunContext(
        run_id=run_id,
        workflow=wf.name,
        writer=writer,
        loop=asyncio.get_running_loop(),
        sync_client=sync_redis(),
        async_client=client,
        journal=journal,
        attempt=attempt,
        secrets=wf.secret_args,
        seed=seed,
        forked_from=rec.get("forked_from") or None,
        rerun_steps=frozenset(loads(rec["rerun_steps"])) if rec.get("rerun_steps") else frozenset(),
    )
    status = await _run_root(ctx, wf, inputs, control)
    await _last_flush(writer, control)
    if status == RunStatus.WAITING:
        _retire(writer)
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
        control.acknowledged = True
        writer = ctx.writer
        if isinstance(writer, RunWriter):
            writer.stopped = True
        if writer.lost:  # taken over: nothing more of this attempt is written
            raise
        if control.reason == "overflow" and writer.backlog is not None:
            _fail(writer, writer.backlog)  # Redis unreachable for too long
            return RunStatus.FAILED
        if control.reason != "cancel":
            if control.reason == "handback":  # journaled steps land before another worker
                await ctx.writer.flush()  # loads the journal
            raise
        _finish(ctx.writer, RunStatus.CANCELLED, {}, {})
        return RunStatus.CANCELLED
    except Parked as parked:
        _park(ctx.writer, parked.wait, ctx.workflow)
        return RunStatus.WAITING
    except Exception as exc:
        _fail(ctx.writer, exc)
        return RunStatus.FAILED
    finally:
        run_var.reset(token)
    encoded = call.encoded if call.encoded is not None else dumps(output)
    if ctx.writer.redactor.may_hold(encoded):  # the record keeps the output masked
        output = ctx.writer.mask(output)
        encoded = dumps(output)
    shown = value_fields("output", output, encoded, at=RECORD, field="output")
    _finish(  # the output is stored once, in the record; the event refers to it if large
        ctx.writer,
        RunStatus.COMPLETED,
        {**shown, "duration": time.time() - t0},
        {"output": encoded},
        keys_checked=True,  # the output's, by may_hold above
    )
    return RunStatus.COMPLETED
