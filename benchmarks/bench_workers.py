"""Compute-layer benchmarks (issue 3). Workers are ``aiflow worker`` processes.

1. Recovery time: SIGKILL the worker running a run -> ``run.resumed`` on the other worker
   (the event's timestamp), with heartbeat interval 0.5 s and TTL 2 s. Target: <= TTL + 1 s.
2. Throughput: trivial one-step runs (``examples.chaos.one_step``) submitted from this
   process and completed, per second, with 1 and 2 workers. Baseline, same run: the same
   runs executed by the executor in this process, records written but no queue, no worker,
   no lease. Target: >= 500 runs/s with 2 workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ._common import Figure, private_redis

ROOT = Path(__file__).resolve().parent.parent
INTERVAL, TTL = 0.5, 2.0
RUNS = 2000
KILLS = 3


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AIFLOW_LOCAL_WORKER": "0",
        "AIFLOW_HEARTBEAT_INTERVAL": str(INTERVAL),
        "AIFLOW_HEARTBEAT_TTL": str(TTL),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from aiflow_nb.cli import main; main()",
            "worker",
            "--app",
            "aiflow_nb.examples.chaos",
            *args,
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {what}")


def _workers(procs: list[subprocess.Popen[bytes]]) -> dict[int, str]:
    from aiflow_nb.ops.presence import live_workers

    pids = {p.pid for p in procs}
    return {int(w["pid"]): w["id"] for w in live_workers() if int(w["pid"]) in pids}


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def recovery_once() -> float:
    """Seconds from SIGKILL of the run's worker to ``run.resumed`` on the other one."""
    from aiflow_nb import keys
    from aiflow_nb.access.handle import RunHandle
    from aiflow_nb.events.fence import holder_of
    from aiflow_nb.ops.submit import submit
    from aiflow_nb.store import sync_redis

    procs = [_spawn(), _spawn()]
    try:
        _wait(lambda: len(_workers(procs)) == 2, 30, "two workers")
        handle = RunHandle(submit("steps", {"n": 400, "delay": 0.05}))
        r = sync_redis()
        holder = _wait(lambda: r.get(keys.run_lease(handle.run_id)), 10, "the run to start")
        time.sleep(0.5 + (time.time() % 1) * INTERVAL)  # anywhere between two heartbeats
        victim = next(p for p in procs if _workers(procs).get(p.pid) == holder_of(holder))
        killed_at = time.time()
        victim.kill()
        victim.wait()
        resumed = _wait(
            lambda: next((e for e in handle.events(follow=False) if e.type == "run.resumed"), None),
            30,
            "run.resumed",
        )
        handle.cancel()
        return float(resumed.ts) - killed_at
    finally:
        _stop(procs)


def _drain_time(count: int, version: str) -> float:
    """Submit ``count`` one-step runs and wait until every one is done; seconds."""
    from aiflow_nb import keys
    from aiflow_nb.access.handle import RunHandle
    from aiflow_nb.ops.submit import submit
    from aiflow_nb.store import sync_redis

    r = sync_redis()
    t0 = time.perf_counter()
    handles = [RunHandle(submit("one_step", {"x": i}, version=version)) for i in range(count)]
    _wait(lambda: r.xlen(keys.queue(version, "one_step", 0)) == 0, 120, "the queue to drain")
    elapsed = time.perf_counter() - t0
    assert handles[-1].status == "completed" and handles[0].status == "completed"
    return elapsed


def throughput(workers: int) -> float:
    """One-step runs per second, submitted and completed, with ``workers`` workers."""
    version = f"tp{workers}"
    procs = [_spawn("--version", version) for _ in range(workers)]
    try:
        _wait(lambda: len(_workers(procs)) == workers, 30, f"{workers} workers")
        _drain_time(200, version)  # warm up (imports, connections, code paths)
        return RUNS / _drain_time(RUNS, version)
    finally:
        _stop(procs)


def baseline() -> float:
    """The same runs submitted (records only) and executed in this process, 64 at a time
    on one loop, without queue, worker or lease; runs/s."""
    from aiflow_nb.examples import chaos  # noqa: F401 - registers one_step here
    from aiflow_nb.ops.executor import execute
    from aiflow_nb.ops.submit import submit
    from aiflow_nb.store import async_redis

    t0 = time.perf_counter()
    run_ids = [submit("one_step", {"x": i}, version="unserved") for i in range(RUNS)]
    submitted = time.perf_counter() - t0

    async def go() -> float:
        client = async_redis()
        gate = asyncio.Semaphore(64)

        async def one(run_id: str) -> None:
            async with gate:
                await execute(run_id, "baseline", client)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(run_id) for run_id in run_ids))
        return RUNS / (submitted + time.perf_counter() - t0)

    return asyncio.run(go())


def main() -> list[Figure]:
    with private_redis():
        recoveries = [recovery_once() for _ in range(KILLS)]
        base = baseline()
        one, two = throughput(1), throughput(2)
    worst = max(recoveries)
    return [
        Figure(
            "recovery: SIGKILL -> run.resumed (worst of 3)",
            worst,
            "s",
            TTL,
            "heartbeat TTL",
            f"<= TTL + 1 = {TTL + 1:g} s",
            worst <= TTL + 1,
        ),
        Figure(
            "recovery: SIGKILL -> run.resumed (median)",
            sorted(recoveries)[1],
            "s",
            TTL,
            "heartbeat TTL",
        ),
        Figure(
            "throughput, 1 worker (submit + complete)",
            one,
            "runs/s",
            base,
            "executor in-process, no queue",
        ),
        Figure(
            "throughput, 2 workers (submit + complete)",
            two,
            "runs/s",
            base,
            "executor in-process, no queue",
            ">= 500 runs/s",
            two >= 500,
        ),
    ]
