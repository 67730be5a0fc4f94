"""Helpers for the compute-layer tests: real ``aiflow worker`` processes, a local HTTP
receiver for notifications, and waiting on run state."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.ops.presence import live_workers
from aiflow_nb.ops.signals import DUMP
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis

from . import PYTHONPATH
from .helpers import LoopbackServer, QuietHandler, wait_for

FAST = {
    "AIFLOW_HEARTBEAT_INTERVAL": "0.25",
    "AIFLOW_HEARTBEAT_TTL": "1.5",
    "AIFLOW_LOCAL_WORKER": "0",
}
"""Heartbeat timing for the worker processes: a dead worker's runs come back in ~2 s."""
CLI = "from aiflow_nb.cli import main; main()"
APP = "aiflow_nb.examples.chaos"


class WorkerProcess:
    """One ``aiflow -v worker --app aiflow_nb.examples.chaos ...`` process, logging to a file."""

    count = 0

    def __init__(self, log_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        WorkerProcess.count += 1
        self.log_path = log_dir / f"worker-{WorkerProcess.count}.log"
        full = {**os.environ, **FAST, "PYTHONPATH": PYTHONPATH, **(env or {})}
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CLI, "-v", "worker", "--app", APP, *args],
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.id = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ready(self, timeout: float = 30.0) -> WorkerProcess:
        """Wait until the worker heartbeats; remember its id."""

        def mine() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log()}")
            return next((w for w in live_workers() if int(w["pid"]) == self.pid), None)

        self.id = wait_for(mine, timeout, f"worker pid {self.pid} to heartbeat")["id"]
        return self

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and reap."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(DUMP)  # its threads' and tasks' stacks into the log: where it waits
            time.sleep(2)
            raise AssertionError(f"worker still running after {timeout} s:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def fleet(log_dir: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start(*args, env=...)`` starts a worker process; all are killed at the end."""
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(log_dir, *args, env=env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def start_monitor(log_dir: Path) -> subprocess.Popen[bytes]:
    """An ``aiflow -v monitor`` process (the heartbeat TTL of the workers), logging to a file."""
    full = {**os.environ, **FAST, "PYTHONPATH": PYTHONPATH}
    with open(log_dir / "monitor.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", CLI, "-v", "monitor"],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def record(run_id: str) -> dict[str, str]:
    raw = sync_redis().hgetall(keys.run(run_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def journal_keys(run_id: str) -> set[str]:
    return {k.decode() for k in sync_redis().hkeys(keys.run_journal(run_id))}


def running_on(run_id: str, worker_id: str | None = None) -> str | None:
    """The worker id holding ``run_id`` while it runs (optionally: only ``worker_id``):
    its lease (the attempt's fencing token, ``<worker id>/<nonce>``) and the record's
    ``worker``, written with the attempt's start, both name it."""
    from aiflow_nb.events.fence import holder_of

    rec = record(run_id)
    token = sync_redis().get(keys.run_lease(run_id))
    if rec.get("status") != "running" or token is None:
        return None
    holder = holder_of(token)
    if rec.get("worker") != holder:  # its attempt's start is not written yet
        return None
    if worker_id is not None and holder != worker_id:
        return None
    return holder


class Receiver(LoopbackServer):
    """A real HTTP server on loopback collecting POSTed JSON bodies; the first
    ``failures`` requests get a 503 (to exercise retries)."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.failures = failures
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests += 1
                if receiver.requests <= receiver.failures:
                    self.send_response(503)
                else:
                    receiver.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

        super().__init__(Handler)
        self.url = f"{self.base_url}/hook"


class Follower(threading.Thread):
    """Follows a run's event stream (replay, then live) in a thread, keeping every event."""

    def __init__(self, run_id: str) -> None:
        super().__init__(daemon=True)
        self.run_id = run_id
        self.events: list[Any] = []

    def run(self) -> None:
        from aiflow_nb.events.reader import read_events

        for event in read_events(self.run_id, block_ms=200):
            self.events.append(event)


def taken_by_dead_worker(status: str = "running", restarts: int = 0) -> RunHandle:
    """A run of ``steps`` a worker read from the queue and started, and then the worker
    vanished (its pending queue entry, a ``running`` mark, no lease)."""
    handle = RunHandle(submit("steps", {"n": 1}, version="default"))
    r = sync_redis()
    queue = keys.queue("default", "steps", keys.partition_of(handle.run_id))
    with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made by an earlier call
        r.xgroup_create(queue, keys.queue_group, id="0", mkstream=True)
    r.xreadgroup(keys.queue_group, "ghost-worker", {queue: ">"}, count=1)
    r.hset(
        keys.run(handle.run_id),
        mapping={"status": status, "restarts": restarts, "worker": "ghost-worker"},
    )
    part = keys.partition_of(handle.run_id)
    r.sadd(keys.running(part), handle.run_id)
    r.zadd(keys.lease_deadlines(part), {handle.run_id: time.time() - 5})  # its lease ran out
    return handle
