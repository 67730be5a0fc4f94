"""Running a worker or a monitor as a process, with shutdown signals on its loop.

Worker: the first SIGTERM/SIGINT drains (stop taking runs; runs in hand finish for up
to ``drain_timeout`` seconds, then are handed back to the queue); a second one stops at
once, leaving runs in hand to the monitor through their expiring leases. Monitor: the
first signal stops it.

Both: SIGUSR1 writes every thread's stack to stderr (even when the event loop is
blocked) and then, from the loop, every asyncio task's stack: what a process that does
not stop is waiting for.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import inspect
import linecache
import logging
import os
import signal
import sys
from types import FrameType

from ..store import aclose_async_redis, run_in_new_loop
from .monitor import Monitor
from .worker import Worker

__all__ = ["DUMP", "SIGNALS", "handle_dump_signal", "run_monitor", "run_worker"]

log = logging.getLogger("aiflow_nb.worker")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
DUMP = signal.SIGUSR1
"""The signal that writes the process's thread and task stacks to stderr."""


def _awaited_frames(coro: object) -> list[FrameType]:
    """The frames of ``coro`` and of what it awaits, outermost first (``Task.get_stack``
    gives only the outermost of a suspended task)."""
    frames: list[FrameType] = []
    seen: set[int] = set()
    while coro is not None and id(coro) not in seen:
        seen.add(id(coro))
        for attr in ("cr_frame", "gi_frame", "ag_frame"):
            frame = getattr(coro, attr, None)
            if frame is not None:
                frames.append(frame)
                break
        awaited = next(
            (
                value
                for attr in ("cr_await", "gi_yieldfrom", "ag_await")
                if (value := getattr(coro, attr, None)) is not None
            ),
            None,
        )
        if awaited is None and type(coro).__name__ == "async_generator_asend":
            # ``async for``: the step object hides its generator but refers to it
            awaited = next((r for r in gc.get_referents(coro) if inspect.isasyncgen(r)), None)
        coro = awaited
    return frames


def _dump_tasks() -> None:
    tasks = asyncio.all_tasks()
    lines = [f"--- {len(tasks)} asyncio task(s), each from its coroutine to what it awaits ---"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        lines.append(f"{task!r}")
        for frame in _awaited_frames(task.get_coro()):
            code = frame.f_code
            lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
            source = linecache.getline(code.co_filename, frame.f_lineno).strip()
            if source:
                lines.append(f"    {source}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def handle_dump_signal(loop: asyncio.AbstractEventLoop) -> None:
    """On ``DUMP``: the threads' stacks at once (C level, so a blocked loop does not stop
    it), then the tasks' stacks from ``loop``."""
    loop.add_signal_handler(DUMP, _dump_tasks)
    faulthandler.register(DUMP, all_threads=True, chain=True)  # then the loop's handler


async def _serve(worker: Worker, drain_timeout: float) -> bool:
    """Serve until drained; True when a second signal aborted."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            log.warning(
                "%s: worker %s draining (up to %g s; send it again to stop at once)",
                name,
                worker.id,
                drain_timeout,
            )
            worker.stop(drain_timeout)
        else:
            log.warning(
                "%s again: worker %s stopping at once; %d run(s) in hand will be "
                "recovered through their leases",
                name,
                worker.id,
                len(worker.tasks),
            )
            worker.abort()

    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    handle_dump_signal(loop)
    try:
        await worker.serve()
    finally:
        await aclose_async_redis()
    return len(received) > 1


def run_worker(worker: Worker, drain_timeout: float) -> int:
    """Serve ``worker`` in this process until drained (or, with burst, the queue is empty).

    Returns the exit status: 0 after a drain, 1 after a hard stop."""
    if drain_timeout < 0:
        raise ValueError(f"drain_timeout must be >= 0 seconds, got {drain_timeout}")
    loop = asyncio.new_event_loop()
    aborted = loop.run_until_complete(_serve(worker, drain_timeout))
    if aborted:  # do not wait for threads of sync workflows: the process ends now
        logging.shutdown()
        os._exit(1)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    return 0


async def _watch(monitor: Monitor) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    handle_dump_signal(loop)
    await monitor.run(stopping)


def run_monitor(monitor: Monitor) -> int:
    """Run ``monitor`` in this process until SIGTERM/SIGINT; returns the exit status."""
    run_in_new_loop(_watch(monitor))
    return 0
