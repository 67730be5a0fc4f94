"""Redis outage recovery (issue 11): how soon runs write again once Redis is back.

A redis-server of the benchmark's own (AOF, ``appendfsync everysec``) is SIGKILLed while
2 ``aiflow worker`` processes run 10 runs, and restarted 5 s later on the same AOF.
Figure: from the restarted server being ready (its log's "ready to accept connections",
after the AOF load) to the first event written to any run's stream (stream ids are
millisecond timestamps). Worst and median of 3. Baseline, same run: a fresh run's first
event after its submit, with the same idle workers (a queue read, a lease, a first write).
Target: within ``OUTAGE_BACKOFF_CAP`` + 0.5 s (the longest a loop waits between two
attempts to reach Redis, plus the write itself).
"""

from __future__ import annotations

import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from aiflow_nb.store.replies import StreamEntries

from ._common import Figure
from .bench_workers import ROOT, _stop, _wait, _workers

OUTAGE = 5.0
RUNS = 10
REPEAT = 3


class _Redis:
    def __init__(self) -> None:
        from aiflow_nb.store.embedded import EmbeddedRedis

        self.server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="aiflow-bench-outage-")))
        self.proc: subprocess.Popen[bytes] = self.server.spawn()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> float:
        """Start it again on the same AOF; when it was ready (``time.time()``)."""
        self.proc = self.server.spawn()
        log = (self.server.directory / "redis.log").read_text().splitlines()
        line = next(x for x in reversed(log) if "ready to accept connections" in x)
        day, ms = line.split(" ", 1)[1].split(" * ")[0].rsplit(".", 1)
        return time.mktime(time.strptime(day, "%d %b %Y %H:%M:%S")) + int(ms) / 1000

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _spawn() -> subprocess.Popen[bytes]:
    """A worker with the default lease TTL (10 s: leases outlive the outage)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIFLOW_LOCAL_WORKER": "0"}
    env["AIFLOW_HEARTBEAT_INTERVAL"] = "0.5"
    cli = "from aiflow_nb.cli import main; main()"
    args = [sys.executable, "-c", cli, "worker", "--app", "aiflow_nb.examples.chaos"]
    return subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _ms(event_id: bytes) -> float:
    return int(event_id.split(b"-")[0]) / 1000


def first_event() -> float:
    """Seconds from a fresh run's submit to its first event after ``run.queued``."""
    from aiflow_nb import keys
    from aiflow_nb.access.handle import RunHandle
    from aiflow_nb.ops.submit import submit
    from aiflow_nb.store import sync_redis

    t0 = time.time()
    handle = RunHandle(submit("steps", {"n": 1, "delay": 0.0}))
    stream = keys.run_events(handle.run_id)
    entries: StreamEntries = _wait(
        lambda: cast(StreamEntries, sync_redis().xrange(stream, count=2))[1:], 10, "an event"
    )
    handle.wait(timeout=10)
    return _ms(entries[0][0]) - t0


def recovery_once(redis: _Redis) -> float:
    """Seconds from Redis ready again to the first event written after an outage."""
    from aiflow_nb import keys
    from aiflow_nb.access.handle import RunHandle
    from aiflow_nb.ops.submit import submit
    from aiflow_nb.store import sync_redis

    handles = [RunHandle(submit("steps", {"n": 40, "delay": 0.2})) for _ in range(RUNS)]
    r = sync_redis()
    _wait(lambda: all(r.get(keys.run_lease(h.run_id)) for h in handles), 30, "runs to start")
    time.sleep(1.0)
    redis.kill()
    time.sleep(OUTAGE)
    ready = redis.restart()
    start = f"{int(ready * 1000)}-0"

    def first() -> float | None:
        heads = [r.xrange(keys.run_events(h.run_id), min=start, count=1) for h in handles]
        return min((_ms(cast(StreamEntries, e)[0][0]) for e in heads if e), default=None)

    written = float(_wait(first, 30, "an event after the outage"))
    for h in handles:
        h.cancel()
    for h in handles:
        h.wait(timeout=30)
    return written - ready


def main() -> list[Figure]:
    import aiflow_nb
    from aiflow_nb import defaults

    redis = _Redis()
    os.environ["REDIS_URL"] = redis.server.url
    os.environ["AIFLOW_NAMESPACE"] = f"bench{secrets.token_hex(3)}"
    aiflow_nb.configure()
    procs = [_spawn(), _spawn()]
    try:
        _wait(lambda: len(_workers(procs)) == 2, 30, "two workers")
        base = statistics.median(first_event() for _ in range(5))
        recoveries = [recovery_once(redis) for _ in range(REPEAT)]
    finally:
        _stop(procs)
        redis.stop()
    target = defaults.OUTAGE_BACKOFF_CAP + 0.5
    worst = max(recoveries)
    return [
        Figure(
            f"outage: Redis back -> first event (worst of {REPEAT})",
            worst,
            "s",
            base,
            "fresh run: submit -> first event",
            f"<= {target:g} s",
            worst <= target,
        ),
        Figure(
            "outage: Redis back -> first event (median)",
            statistics.median(recoveries),
            "s",
            base,
            "fresh run: submit -> first event",
        ),
    ]
