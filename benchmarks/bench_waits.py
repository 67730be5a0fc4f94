"""Parked runs (issue 13): what a run waiting for an answer costs, and how fast answers
and timers wake runs. One private Redis, the in-process worker.

1. Redis bytes per parked run (``used_memory`` less client buffers, over PARKED runs
   parked at ``wait_for_input``). Baseline, same run: bytes per finished trivial run.
2. Worker memory (RSS of this process, which runs the in-process worker) before and
   after PARKED runs parked: parked runs hold nothing in any process (target: no growth
   beyond noise).
3. Answer -> run resumed latency (``respond`` returns -> ``run.resumed`` event), p50/p99
   over ANSWERS runs (target p50 <= 20 ms on an idle machine). Baseline, same run:
   submit -> ``run.started`` of fresh runs (the same queue path).
4. Timer lateness: SLEEPS runs ``sleep(1)``; ``run.resumed`` minus the due time, p99
   (target <= 1 s; the monitor sweeps every ``MONITOR_INTERVAL``).
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Any

from ._common import Figure, private_redis

PARKED = 10_000
ANSWERS = 300
SLEEPS = 200
BATCH = 500


def _stored(r: Any) -> int:
    info = r.info("memory")
    return int(info["used_memory"]) - int(info["mem_clients_normal"])


def _rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _workflows() -> tuple[Any, Any, Any]:
    import aiflow_nb
    from aiflow_nb import workflow

    @workflow
    def bench_trivial(x: int) -> int:
        return x

    @workflow
    def bench_ask(x: int) -> Any:
        return aiflow_nb.wait_for_input("ok", bool, prompt="ok?")

    @workflow
    def bench_nap(seconds: float) -> None:
        aiflow_nb.sleep(seconds)

    return bench_trivial, bench_ask, bench_nap


def _until(handles: list[Any], status: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for h in handles:
        while h.status != status:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {h.run_id} not {status} after {timeout} s")
            time.sleep(0.005)


def _event_ts(handle: Any, type_: str) -> float:
    return next(e.ts for e in handle.events(follow=False) if e.type == type_)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> list[Figure]:
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.store import sync_redis

    with private_redis():
        r = sync_redis()
        trivial, ask, nap = _workflows()
        ensure_local_worker(force=True)
        for h in [trivial.start(x=i) for i in range(50)]:  # warm up
            h.result(timeout=60)
        time.sleep(0.5)
        mem0 = _stored(r)
        for first in range(0, 2000, BATCH):
            for h in [trivial.start(x=i) for i in range(first, first + BATCH)]:
                h.result(timeout=120)
        time.sleep(0.5)
        finished = (_stored(r) - mem0) / 2000

        # fresh-run latency baseline: submit -> run.started
        started = []
        for i in range(ANSWERS):
            t0 = time.time()
            h = trivial.start(x=i)
            h.result(timeout=30)
            started.append(_event_ts(h, "run.started") - t0)

        rss0, mem0 = _rss(), _stored(r)
        parked: list[Any] = []
        for first in range(0, PARKED, BATCH):
            batch = [ask.start(x=i) for i in range(first, min(PARKED, first + BATCH))]
            _until(batch, "waiting")
            parked += batch
        time.sleep(0.5)
        per_parked = (_stored(r) - mem0) / PARKED
        rss_growth = (_rss() - rss0) / 1e6

        latencies = []
        for h in parked[:ANSWERS]:
            t0 = time.time()
            h.respond("ok", True)
            h.result(timeout=30)
            latencies.append(_event_ts(h, "run.resumed") - t0)

        sleepers = [nap.start(seconds=1.0) for _ in range(SLEEPS)]
        for h in sleepers:
            h.result(timeout=60)
        late = []
        for h in sleepers:
            wait = next(e.data for e in h.events(follow=False) if e.type == "run.waiting")
            late.append(_event_ts(h, "run.resumed") - wait["deadline"])
    p50, p99 = statistics.median(latencies) * 1e3, _pct(latencies, 0.99) * 1e3
    return [
        Figure(
            f"Redis memory per parked run ({PARKED})",
            per_parked,
            "B",
            finished,
            "finished trivial run",
        ),
        Figure(
            f"worker RSS growth with {PARKED} parked runs",
            rss_growth,
            "MB",
            target="~0 (no growth)",
            met=rss_growth < 20,
        ),
        Figure(
            "answer -> run.resumed p50",
            p50,
            "ms",
            statistics.median(started) * 1e3,
            "submit -> run.started p50",
            "<= 20 ms (idle machine)",
            p50 <= 20,
        ),
        Figure("answer -> run.resumed p99", p99, "ms", _pct(started, 0.99) * 1e3, "submit p99"),
        Figure(
            f"sleep(1) lateness p99 ({SLEEPS})",
            _pct(late, 0.99) * 1e3,
            "ms",
            target="<= 1000 ms",
            met=_pct(late, 0.99) <= 1.0,
        ),
    ]
