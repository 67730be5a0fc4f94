"""Crashed-run notifications: a JSON POST to ``AIFLOW_NOTIFY_URL``, retried with backoff
in a background task so that the monitor never waits for it.

Example::

    notifier = Notifier("http://127.0.0.1:9000/hook")
    notifier.send({"run_id": "...", "workflow": "ingest", "status": "failed",
                   "reason": "crashed"})      # returns at once
    await notifier.aclose()                   # optional: give pending POSTs a moment
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .. import defaults
from ..cancelling import cancel_and_wait

__all__ = ["Notifier"]

log = logging.getLogger("aiflow_nb.notify")


class Notifier:
    """POSTs notification documents to ``url``; ``send`` never blocks.

    ``sleep`` and ``transport`` are injectable so a test can retry without waiting.
    """

    def __init__(
        self,
        url: str | None,
        *,
        attempts: int = defaults.NOTIFY_ATTEMPTS,
        backoff: float = defaults.NOTIFY_BACKOFF,
        timeout: float = defaults.NOTIFY_TIMEOUT,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self._transport = transport
        self._tasks: set[asyncio.Task[bool]] = set()
        self.delivered = 0
        self.given_up = 0

    def send(self, document: dict[str, Any]) -> asyncio.Task[bool] | None:
        """Start POSTing ``document`` in the background; None when no URL is configured."""
        if not self.url:
            return None
        task = asyncio.get_running_loop().create_task(self._deliver(document))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(self, document: dict[str, Any]) -> bool:
        assert self.url is not None
        async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout) as http:
            for attempt in range(1, self.attempts + 1):
                problem = await self._post_once(http, document)
                if problem is None:
                    self.delivered += 1
                    return True
                log.warning(
                    "notification for run %s, attempt %d/%d: %s",
                    document.get("run_id"),
                    attempt,
                    self.attempts,
                    problem,
                )
                if attempt < self.attempts:
                    await self._sleep(self.backoff * 2 ** (attempt - 1))
        self.given_up += 1
        log.error(
            "notification for run %s given up after %d attempts (%s)",
            document.get("run_id"),
            self.attempts,
            self.url,
        )
        return False

    async def _post_once(self, http: httpx.AsyncClient, document: dict[str, Any]) -> str | None:
        assert self.url is not None
        try:
            response = await http.post(self.url, json=document)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code >= 300:
            return f"HTTP {response.status_code}"
        return None

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for pending deliveries, then cancel the rest."""
        if not self._tasks:
            return
        _done, left = await asyncio.wait(set(self._tasks), timeout=timeout)
        await cancel_and_wait(*left)
