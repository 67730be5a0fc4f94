"""This machine's background worker for registered notebook code: a worker process that
outlives kernels (as the embedded Redis does), so a ``%%workflow`` cell's run survives
the death of its kernel and completes with no user action.

``%load_ext aiflow_nb`` starts it unless one is live (``AIFLOW_CODE_WORKER=0``: never);
``aiflow worker daemon status|start|stop`` show, start and stop it. There is one per
machine, namespace and version; it takes only runs of registered code that ran before
(the resumed code queue, ``ops/routing.py``: a fresh run starts in a kernel, with the
kernel's environment) and runs a monitor, so a dead kernel's runs are re-queued and
resumed here from their journal. Its log is ``log_path(version)``.

Example::

    ensure_daemon()          # -> "started", "running" or "starting" (another is starting it)
    [d["pid"] for d in daemons()]
    stop_daemons()
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from .. import defaults, keys
from ..config import settings
from ..store import sync_redis
from ..store.embedded import EmbeddedRedis
from .presence import live_workers, node, process_alive
from .routing import RESUMED
from .submit import resolve_version

__all__ = ["KIND", "daemons", "ensure_daemon", "log_path", "main", "pid_path", "stop_daemons"]

KIND = "daemon"
"""The ``kind`` a code worker daemon advertises in its heartbeat."""


def log_path(version: str) -> Path:
    """Where the daemon of ``version`` (in this namespace) writes its log."""
    home = EmbeddedRedis.default().directory.parent
    return home / "workers" / f"code-{settings().namespace}-{version}.log"


def daemons(client: redis.Redis | None = None, version: str | None = None) -> list[dict[str, Any]]:
    """The live code worker daemons of this machine (of ``version`` when given)."""
    here = node()
    return [
        w
        for w in live_workers(client, version, active=True)
        if w.get("kind") == KIND and w.get("node") == here
    ]


def ensure_daemon(version: str | None = None, client: redis.Redis | None = None) -> str:
    """Start this machine's code worker of ``version`` unless one is live: ``running``,
    ``starting`` (another process is starting it) or ``started``."""
    r = client or sync_redis()
    version = version or resolve_version(r)
    if daemons(r, version):
        return "running"
    lock_ms = int(defaults.DAEMON_START_TTL * 1000)
    if not r.set(keys.daemon_start(node(), version), os.getpid(), nx=True, px=lock_ms):
        return "starting"
    _spawn(version)
    return "started"


def _spawn(version: str) -> None:
    """Start the daemon process (``main``) detached from this one (its own session,
    reparented once the shell in between exits), appending to its log."""
    log = log_path(version)
    log.parent.mkdir(parents=True, exist_ok=True)
    script = 'exec "$@" </dev/null >>"$AIFLOW_DAEMON_LOG" 2>&1 &'
    code = f"import sys; from {__name__} import main; sys.exit(main(sys.argv))"
    argv = ["/bin/sh", "-c", script, "sh", sys.executable, "-c", code, version]
    env = {**os.environ, "AIFLOW_DAEMON_LOG": str(log)}
    subprocess.run(argv, env=env, check=True, start_new_session=True)


def pid_path(version: str) -> Path:
    """The daemon's pid file (next to its log): found even while Redis is away."""
    return log_path(version).with_suffix(".pid")


def _is_daemon(pid: int) -> bool:
    """Process ``pid`` exists and is a code worker daemon (a reused pid is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return process_alive(pid)  # no /proc: trust the pid file or heartbeat
    return __name__.encode() in cmdline


def _pids(version: str | None) -> set[int]:
    """This machine's daemons of ``version`` (any, when None): heartbeats and pid files."""
    pids = {int(d["pid"]) for d in daemons(version=version)}
    pattern = pid_path(version or "*").name
    for path in log_path(version or "x").parent.glob(pattern):
        text = path.read_text().strip()
        if text.isdigit():
            pids.add(int(text))
    return {pid for pid in pids if _is_daemon(pid)}


def _signal_all(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def stop_daemons(
    version: str | None = None, timeout: float = defaults.DRAIN_TIMEOUT + 5
) -> list[int]:
    """SIGTERM this machine's code worker daemons (they drain: runs in hand finish, or are
    handed back after their drain timeout) and wait until they exit; past ``timeout`` a
    second SIGTERM stops them at once (their runs come back through their leases).
    Returns their pids."""
    pids = _pids(version)
    _signal_all(pids)
    deadline = time.monotonic() + timeout
    while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {p for p in pids if process_alive(p)}
    _signal_all(left)
    deadline = time.monotonic() + 5
    while any(process_alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(pids)


def main(argv: list[str]) -> int:
    """The daemon process: serve registered code of ``argv[1]`` (else the resolved
    version) until SIGTERM; exit at once if another daemon of it is live here."""
    from .signals import run_worker
    from .worker import Worker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    version = argv[1] if len(argv) > 1 else resolve_version()
    if daemons(version=version):
        return 0
    worker = Worker(version=version, code=RESUMED, workflows=tuple, kind=KIND)
    logging.getLogger("aiflow_nb.daemon").info(
        "code worker %s (pid %d) serving registered code of version %s",
        worker.id,
        os.getpid(),
        version,
    )
    pidfile = pid_path(version)
    pidfile.write_text(str(os.getpid()))
    try:
        return run_worker(worker, defaults.DRAIN_TIMEOUT)
    finally:
        if pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink()
