"""Cancelling asyncio tasks so that they end, even where a cancellation is swallowed.

On Python 3.11 ``asyncio.wait_for`` returns its inner result instead of raising when a
cancellation lands just as that inner future completes; the cancellation is lost.
redis-py sends every command under ``wait_for`` once a socket timeout is set (redis-py 8
sets 5 s by default), so a task looping over Redis commands, cancelled mid-send, can go
on forever: a draining worker then never exits. ``cancel_and_wait`` cancels again until
each task has ended::

    await cancel_and_wait(heartbeat, listener)
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RECANCEL", "cancel_and_wait"]

RECANCEL = 0.02
"""Seconds between two cancellations of a task that has not yet ended (or seen the first)."""


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again each
    ``RECANCEL`` seconds those still running. Their results and exceptions are dropped
    (retrieved, so none is logged as never retrieved). A task that catches every
    cancellation and goes on is waited for forever, as it would be by ``gather``."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=RECANCEL)
    for task in tasks:
        if not task.cancelled():
            task.exception()
