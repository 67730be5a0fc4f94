"""The in-process worker: a ``Worker`` on its own event loop in a background thread.

Started by ``Workflow.start`` when ``AIFLOW_LOCAL_WORKER=1``, or when it is unset and
no live worker can execute the run (``ops/routing.py``: none serves its workflow, or
registered code). ``AIFLOW_LOCAL_WORKER=0`` never starts one. It serves every workflow
this process defines, and registered code, in the process's namespace: none is started
for a run queued under ``config.use_namespace`` of another one (a dashboard session's
``?ns=``), which its thread would not serve. At interpreter exit it stops at once: runs in
hand are handed back (re-queued for another worker to resume from their journal).
"""

from __future__ import annotations

import asyncio
import atexit
import threading

from .. import defaults
from ..config import namespace, settings
from ..store.connection import aclose_async_redis
from .daemon import KIND
from .presence import live_workers
from .routing import Need, serving
from .submit import resolve_version
from .worker import Worker

__all__ = ["LocalWorker", "ensure_local_worker", "local_worker", "stop_local_worker"]


class LocalWorker:
    """A worker thread; ``start()`` returns once it consumes the queue."""

    def __init__(self, **options: object) -> None:
        self.worker = Worker(**options)  # type: ignore[arg-type]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="aiflow-worker", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> LocalWorker:
        self._thread.start()
        while not self.worker.ready.wait(0.01):
            if not self._thread.is_alive():
                raise self.error or RuntimeError("the in-process worker did not start")
        return self

    def _main(self) -> None:
        with asyncio.Runner() as runner:  # closing: async generators, executor, then the loop
            self.loop = runner.get_loop()
            try:
                runner.run(self._serve())
            except BaseException as exc:
                self.error = exc

    async def _serve(self) -> None:
        try:
            await self.worker.serve()
        finally:
            await aclose_async_redis()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0, drain_timeout: float | None = None) -> None:
        """Stop taking runs, let runs in hand end (or hand them back after
        ``drain_timeout`` seconds), and join the thread."""
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.worker.stop, drain_timeout)
        self._thread.join(timeout)


_lock = threading.Lock()
_local: LocalWorker | None = None


def local_worker() -> LocalWorker | None:
    """The running in-process worker, if any."""
    return _local if _local is not None and _local.alive else None


def _wanted(workflow: str | None, code: bool) -> bool:
    """No live worker can take a run of ``workflow`` (any run of the version, without one)."""
    version = resolve_version()
    if workflow is not None:
        return not serving(Need(version, workflow, code))
    # the code worker daemon takes only resumed runs: it does not stand in for this one
    return not [w for w in live_workers(version=version, active=True) if w.get("kind") != KIND]


def ensure_local_worker(
    force: bool = False, workflow: str | None = None, code: bool = False
) -> LocalWorker | None:
    """Start the in-process worker if the settings call for one (``workflow``, ``code``:
    what the run just queued needs); return it."""
    global _local
    wanted = settings().local_worker
    if (wanted is False or namespace() != settings().namespace) and not force:
        return None
    with _lock:
        if local_worker() is not None:
            return _local
        if not force and wanted is None and not _wanted(workflow, code):
            return None
        _local = LocalWorker(kind="in-process").start()
        return _local


def stop_local_worker(drain_timeout: float | None = None) -> None:
    """Stop the in-process worker (its runs in hand finish first, or are handed back
    after ``drain_timeout`` seconds)."""
    global _local
    with _lock:
        if _local is not None:
            _local.stop(drain_timeout=drain_timeout)
        _local = None


def _at_exit() -> None:
    stop_local_worker(drain_timeout=defaults.EXIT_DRAIN_TIMEOUT)


atexit.register(_at_exit)
