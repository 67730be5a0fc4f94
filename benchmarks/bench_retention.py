"""Retention benchmarks (issue 12): what a finished trivial run costs Redis, and that
it all goes again.

1. Bytes of Redis memory per finished trivial run (INFO ``used_memory`` less client
   buffers, over RUNS runs through the in-process worker). Target: <= 3 KB (was ~5.6 KB).
   Baseline, measured in the same run: one plain Redis hash per run holding the same
   record fields (what storing only the run record would cost).
2. Bytes of AOF per finished trivial run (``aof_current_size``), same baseline's AOF.
3. Memory after ``prune`` of every run, per run (back to the starting point: ~0).
"""

from __future__ import annotations

import time
from typing import Any

from ._common import Figure, private_redis

RUNS = 5000
BATCH = 500


def _stored(r: Any) -> int:
    info = r.info("memory")
    return int(info["used_memory"]) - int(info["mem_clients_normal"])


def _aof(r: Any) -> int:
    return int(r.info("persistence").get("aof_current_size", 0))


def _settle(r: Any) -> None:
    time.sleep(0.5)  # background frees, the AOF's fsync


def _trivial_runs(n: int) -> None:
    from aiflow_nb import workflow

    @workflow
    def trivial(x: int) -> int:
        return x

    for first in range(0, n, BATCH):
        handles = [trivial.start(x=i) for i in range(first, min(n, first + BATCH))]
        for h in handles:
            h.result(timeout=120)


def _record_only(r: Any, n: int) -> None:
    """The baseline: one hash per run with the record a trivial run ends with."""
    from aiflow_nb.ops.submit import new_run_id

    now = time.time()
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        run_id = new_run_id()
        pipe.hset(
            f"baseline:run:{{{run_id}}}",
            mapping={
                "workflow": "trivial",
                "version": "default",
                "status": "completed",
                "inputs": f'{{"x":{i}}}',
                "output": str(i),
                "created_at": now,
                "started_at": now,
                "ended_at": now,
                "attempt": 1,
                "worker": "host-1234-abcd",
            },
        )
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def main() -> list[Figure]:
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.ops.retention import prune
    from aiflow_nb.store import sync_redis

    with private_redis():
        r = sync_redis()
        ensure_local_worker(force=True)
        _trivial_runs(50)  # warm up: worker, queues, scripts, pools
        prune(1e-3)
        _settle(r)
        mem0, aof0 = _stored(r), _aof(r)
        _record_only(r, RUNS)
        _settle(r)
        base_mem, base_aof = (_stored(r) - mem0) / RUNS, (_aof(r) - aof0) / RUNS
        for key in r.scan_iter(match="baseline:*", count=5000):
            r.unlink(key)
        _settle(r)
        mem0, aof0 = _stored(r), _aof(r)
        _trivial_runs(RUNS)
        _settle(r)
        per_run, aof_per_run = (_stored(r) - mem0) / RUNS, (_aof(r) - aof0) / RUNS
        t0 = time.perf_counter()
        pruned = prune(1e-3)
        prune_s = time.perf_counter() - t0
        _settle(r)
        left = (_stored(r) - mem0) / RUNS
    return [
        Figure(
            f"Redis memory per finished trivial run ({RUNS})",
            per_run,
            "B",
            base_mem,
            "record-only hash",
            "<= 3072 B",
            per_run <= 3072,
        ),
        Figure("AOF bytes per finished trivial run", aof_per_run, "B", base_aof, "record-only"),
        Figure(f"memory left per run after prune ({pruned} runs)", left, "B"),
        Figure("prune time per run", prune_s / max(pruned, 1) * 1e6, "us"),
    ]
