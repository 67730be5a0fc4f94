"""Throughput on a loopback 3-master Redis Cluster, and the ceiling for N masters (issue 16).

The workload is ``bench_lean``'s throughput one (``bench_workers``' trivial one-step runs,
``examples.chaos.one_step``, submitted from this process and executed by 2 ``aiflow
worker`` processes), run three times in this run:

1. on one Redis (the embedded server, a private one) with the default single partition:
   the baseline;
2. on one Redis with ``AIFLOW_PARTITIONS=P`` (the partitioned layout without a cluster,
   to tell the layout's cost from the cluster's);
3. on a 3-master Redis Cluster on loopback started with the project's harness
   (``scripts/cluster start|stop DIR``: Debian's ``redis-server``, or
   ``AIFLOW_CLUSTER_SERVER``), ``REDIS_URL=redis+cluster://...`` and
   ``AIFLOW_PARTITIONS=P``.

For each: runs/s (ratio against 1.), and the Redis CPU per run from ``INFO cpu``, summed
over the masters on the cluster (each read with a plain client of its own), less the
idle workers' traffic over an idle second measured first (and with it left in: idle
workers poll each partition they hold, so it grows with P); the commands Redis
executed per run (``INFO commandstats`` calls, idle traffic and the drain's polling
included, the benchmark's own INFOs too: a few per run at most). On the cluster also the
busiest master's share: the per-run CPU of the hottest master bounds the cluster's
ceiling (``1 / its CPU per run``), and ``N / summed CPU per run`` is the ceiling for N
masters with the work spread evenly. The wait for the queues to drain polls their
lengths every ``POLL`` s (a few µs of Redis CPU per run, counted in).

``python -m benchmarks cluster``; ``AIFLOW_BENCH_PARTITIONS`` sets P (default 16).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import Figure, private_redis

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = int(os.environ.get("AIFLOW_BENCH_PARTITIONS", "16"))
WORKERS = 2
RUNS = int(os.environ.get("AIFLOW_BENCH_RUNS", "3000"))
POLL = 0.05
IDLE = 1.0


@dataclass
class Throughput:
    """One measured throughput: runs/s, Redis CPU seconds per run (summed over the
    nodes, idle traffic subtracted), each node's share of it, the idle workers' Redis
    CPU (s per s, summed), and the CPU seconds per run of the client processes (the
    workers and this submitting one); the commands executed per run, and the Redis CPU
    per run with the idle traffic left in."""

    rate: float
    cpu: float
    per_node: list[float]
    idle: float
    clients: float
    commands: float
    gross: float


def _node_cpu(node: Any) -> float:
    used = node.info("cpu")
    return float(used["used_cpu_sys"]) + float(used["used_cpu_user"])


def _node_calls(node: Any) -> int:
    """Commands the node has executed (``INFO commandstats``; scripts' own included)."""
    return sum(int(v["calls"]) for v in node.info("commandstats").values())


def _queued(version: str) -> int:
    """Entries left in the workload's queues, every partition's (one pipeline; on a
    cluster redis-py sends it to each node holding one of them)."""
    from aiflow_nb import keys
    from aiflow_nb.store import sync_redis

    pipe = sync_redis().pipeline(transaction=False)
    for partition in range(keys.partitions()):
        pipe.xlen(keys.queue(version, "one_step", partition))
    return sum(int(n) for n in pipe.execute())


def _drain(count: int, version: str, timeout: float = 300) -> float:
    """Submit ``count`` one-step runs, wait until every queue is empty; seconds."""
    from aiflow_nb.access.handle import RunHandle
    from aiflow_nb.ops.submit import submit

    t0 = time.perf_counter()
    handles = [RunHandle(submit("one_step", {"x": i}, version=version)) for i in range(count)]
    deadline = time.monotonic() + timeout
    while _queued(version):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {_queued(version)} of {count} runs still queued")
        time.sleep(POLL)
    elapsed = time.perf_counter() - t0
    for handle in (handles[0], handles[-1]):
        if handle.status != "completed":
            raise RuntimeError(f"run {handle.run_id} is {handle.status}, not completed")
    return elapsed


def throughput(nodes: list[Any], version: str) -> Throughput:
    """``RUNS`` trivial runs through ``WORKERS`` worker processes on the Redis in force;
    ``nodes``: a plain client of each of its servers (for ``INFO cpu``)."""
    import psutil

    from .bench_workers import _spawn, _stop, _wait, _workers

    procs = [_spawn("--version", version) for _ in range(WORKERS)]

    def cpu() -> list[float]:
        return [_node_cpu(node) for node in nodes]

    def spent(before: list[float]) -> list[float]:
        return [b - a for a, b in zip(before, cpu(), strict=True)]

    def clients() -> float:
        workers = sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)
        return workers + time.process_time()

    try:
        _wait(lambda: len(_workers(procs)) == WORKERS, 60, f"{WORKERS} workers")
        _drain(300, version)  # warm up (imports, connections, partition claims)
        before, t0 = cpu(), time.perf_counter()
        time.sleep(IDLE)
        idle = [s / (time.perf_counter() - t0) for s in spent(before)]
        before, used = cpu(), clients()
        calls = sum(_node_calls(node) for node in nodes)
        elapsed = _drain(RUNS, version)
        busy, used = spent(before), clients() - used
        calls = sum(_node_calls(node) for node in nodes) - calls
    finally:
        _stop(procs)
    per_node = [max(0.0, (b - i * elapsed) / RUNS) for b, i in zip(busy, idle, strict=True)]
    return Throughput(
        RUNS / elapsed,
        sum(per_node),
        per_node,
        sum(idle),
        used / RUNS,
        calls / RUNS,
        sum(busy) / RUNS,
    )


@contextmanager
def _partitions(count: int | None) -> Iterator[None]:
    """``AIFLOW_PARTITIONS=count`` (unset when ``None``) for what runs inside."""
    old = os.environ.pop("AIFLOW_PARTITIONS", None)
    if count is not None:
        os.environ["AIFLOW_PARTITIONS"] = str(count)
    try:
        yield
    finally:
        os.environ.pop("AIFLOW_PARTITIONS", None)
        if old is not None:
            os.environ["AIFLOW_PARTITIONS"] = old


def _single(partitions: int | None, version: str) -> Throughput:
    """The workload on a private single Redis."""
    from aiflow_nb.store import sync_redis

    with _partitions(partitions), private_redis():
        return throughput([sync_redis()], version)


def _run(*args: str) -> str:
    done = subprocess.run(
        [str(ROOT / "scripts" / "cluster"), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.strip()


@contextmanager
def loopback_cluster() -> Iterator[list[Any]]:
    """A 3-master cluster started with ``scripts/cluster`` in a temp directory; sets
    REDIS_URL to it (and a fresh namespace) and yields a plain client of each master."""
    import secrets

    import redis

    import aiflow_nb

    directory = Path(tempfile.mkdtemp(prefix="aiflow-bench-cluster-"))
    url = _run("start", str(directory))
    saved = {k: os.environ.get(k) for k in ("REDIS_URL", "AIFLOW_NAMESPACE")}
    os.environ["REDIS_URL"] = url
    os.environ["AIFLOW_NAMESPACE"] = f"bench{secrets.token_hex(3)}"
    aiflow_nb.configure()
    addresses = url.removeprefix("redis+cluster://").split(",")
    nodes = [redis.Redis(host=a.split(":")[0], port=int(a.split(":")[1])) for a in addresses]
    try:
        yield nodes
    finally:
        from aiflow_nb.ops.local import stop_local_worker

        stop_local_worker()
        _run("stop", str(directory))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aiflow_nb.configure()


def _clustered(partitions: int, version: str) -> Throughput:
    with _partitions(partitions), loopback_cluster() as nodes:
        return throughput(nodes, version)


def main() -> list[Figure]:
    single = _single(None, "cb1")
    layout = _single(PARTITIONS, "cbp")
    cluster = _clustered(PARTITIONS, "cbc")
    return figures(single, layout, cluster)


def figures(single: Throughput, layout: Throughput, cluster: Throughput) -> list[Figure]:
    us = 1e6
    hottest = max(cluster.per_node)
    per_master: Callable[[int], float] = lambda n: n / cluster.cpu  # noqa: E731
    p = PARTITIONS
    return [
        Figure(f"throughput, one Redis, 1 partition, {WORKERS} workers", single.rate, "runs/s"),
        Figure(
            f"throughput, one Redis, {p} partitions",
            layout.rate,
            "runs/s",
            single.rate,
            "one Redis, 1 partition",
        ),
        Figure(
            f"throughput, 3-master cluster, {p} partitions",
            cluster.rate,
            "runs/s",
            single.rate,
            "one Redis, 1 partition",
        ),
        Figure("commands executed per run, one Redis, 1 partition", single.commands, "commands"),
        Figure(
            f"  same, one Redis, {p} partitions",
            layout.commands,
            "commands",
            single.commands,
            "1 partition",
        ),
        Figure(
            "  same, cluster, summed over 3 masters",
            cluster.commands,
            "commands",
            single.commands,
            "one Redis, 1 partition",
        ),
        Figure(
            "Redis CPU per run, one Redis, 1 partition",
            single.cpu * us,
            "us",
        ),
        Figure(
            f"Redis CPU per run, one Redis, {p} partitions",
            layout.cpu * us,
            "us",
            single.cpu * us,
            "1 partition",
        ),
        Figure(
            "Redis CPU per run, cluster, summed over 3 masters",
            cluster.cpu * us,
            "us",
            single.cpu * us,
            "one Redis, 1 partition",
        ),
        Figure(
            "  same, idle traffic not subtracted, one Redis / cluster",
            single.gross * us,
            f"us / {cluster.gross * us:.0f} us",
        ),
        Figure(
            "  per master (us): " + " / ".join(f"{c * us:.0f}" for c in cluster.per_node),
            hottest * us,
            "us (hottest)",
        ),
        Figure(
            "  idle workers' Redis CPU (subtracted), one Redis / cluster",
            single.idle * 100,
            f"% of a core / {cluster.idle * 100:.1f} %",
        ),
        Figure("  one Redis core's ceiling, runs/s", 1 / single.cpu, "runs/s"),
        Figure("  this 3-master cluster's ceiling (hottest master)", 1 / hottest, "runs/s"),
        Figure(
            f"client CPU per run ({WORKERS} workers + submitter), one Redis, 1 partition",
            single.clients * us,
            "us",
        ),
        Figure(
            f"  same, one Redis, {p} partitions",
            layout.clients * us,
            "us",
            single.clients * us,
            "1 partition",
        ),
        Figure(
            f"  same, 3-master cluster, {p} partitions",
            cluster.clients * us,
            "us",
            single.clients * us,
            "one Redis, 1 partition",
        ),
        *(
            Figure(f"  projected ceiling, {n} masters (even spread)", per_master(n), "runs/s")
            for n in (1, 3, 10, 30)
        ),
    ]
