"""Running a worker or a monitor as a process, with shutdown signals on its loop.

Worker: the first SIGTERM/SIGINT drains (stop taking runs; runs in hand finish for up
to ``drain_timeout`` seconds, then are handed back to the queue); a second one stops at
once, leaving runs in hand to the monitor through their expiring leases. Monitor: the
first signal stops it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ..store import aclose_async_redis, run_in_new_loop
from .monitor import Monitor
from .worker import Worker

__all__ = ["SIGNALS", "run_monitor", "run_worker"]

log = logging.getLogger("aiflow_nb.worker")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
    await monitor.run(stopping)


def run_monitor(monitor: Monitor) -> int:
    """Run ``monitor`` in this process until SIGTERM/SIGINT; returns the exit status."""
    run_in_new_loop(_watch(monitor))
    return 0
