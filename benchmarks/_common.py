"""Shared benchmark helpers: a private Redis, timing, and ratio printing."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Figure", "median_time", "private_redis", "report"]


@dataclass
class Figure:
    """One measured figure, its baseline from the same run, and the target."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None

    def line(self) -> str:
        ratio = (
            f"  ratio {self.value / self.baseline:8.2f}x vs {self.baseline_name} "
            f"({self.baseline:.4g} {self.unit})"
            if self.baseline
            else ""
        )
        verdicts = {None: "", True: "  [target met]", False: "  [target MISSED]"}
        verdict = verdicts[self.met]
        target = f"  target {self.target}" if self.target else ""
        return f"{self.name:<48} {self.value:10.4g} {self.unit}{ratio}{target}{verdict}"


def report(figures: list[Figure]) -> None:
    for figure in figures:
        print(figure.line(), flush=True)


@contextmanager
def private_redis(binary: str | None = None) -> Iterator[str]:
    """A redis-server of the benchmark's own on a temp unix socket (the embedded binary,
    or ``binary``); sets REDIS_URL and a fresh namespace, and yields the URL."""
    import aiflow_nb
    from aiflow_nb.store.embedded import EmbeddedRedis

    directory = Path(tempfile.mkdtemp(prefix="aiflow-bench-"))
    server = EmbeddedRedis(directory, binary)
    proc = server.spawn()
    os.environ["REDIS_URL"] = server.url
    os.environ["AIFLOW_NAMESPACE"] = f"bench{secrets.token_hex(3)}"
    aiflow_nb.configure()
    try:
        yield server.url
    finally:
        from aiflow_nb.ops.local import stop_local_worker

        stop_local_worker()
        proc.terminate()
        proc.wait(10)


def median_time(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, seconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)
