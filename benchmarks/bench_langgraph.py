"""W1 side by side with LangGraph (issue 16): one workflow of ``STEPS`` sequential trivial
steps, durable in both.

- aiflow-nb: ``bench_core``'s ``seq_sync`` (each step a ``@component`` adding one), run by
  the in-process worker on the embedded Redis, fencing on as every worker runs;
  ``start()`` -> ``result()``.
- LangGraph: a ``StateGraph`` of ``STEPS`` sequential nodes (each adding one to the
  state), compiled with ``SqliteSaver`` (langgraph-checkpoint-sqlite) on a temp file and
  invoked with a fresh ``thread_id`` per run (its default durability: a checkpoint per
  step, each a commit; SqliteSaver sets WAL, SQLite's default ``synchronous=FULL`` syncs
  every commit to disk). A second LangGraph, the same but ``PRAGMA synchronous=NORMAL``
  (WAL synced at checkpoints only: safe against a crash of the process, not of the
  machine, as the embedded Redis's ``appendfsync everysec``), is the fairer baseline
  for durability and is reported beside it.

Same machine, same process, the three taking turns (the order rotating) for ``ROUNDS``
rounds after a warm-up; medians of the wall time and of the CPU time per run (this
process's, which holds LangGraph and SQLite, and aiflow-nb's worker threads; plus the
Redis server's for aiflow-nb, from ``INFO cpu``). Target: aiflow-nb >= 25x faster than
LangGraph as it ships (the default ``SqliteSaver``). Needs the ``bench`` extra
(``pip install -e ".[bench]"``); without it the benchmark says so in one line and skips.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

from ._common import Figure, private_redis

STEPS = 200
ROUNDS = 21
WARMUP = 3
TARGET = 25.0


class _State(TypedDict):
    x: int


def _have_langgraph() -> bool:
    try:
        import langgraph.checkpoint.sqlite  # noqa: F401
        import langgraph.graph  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def langgraph_w1(steps: int = STEPS, synchronous: str = "") -> Iterator[Callable[[], int]]:
    """A function running W1 once on LangGraph with its SQLite checkpointer (a temp file,
    a fresh thread per run; ``PRAGMA synchronous=<synchronous>`` unless empty) and
    returning the final ``x``."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    def inc(state: _State) -> dict[str, int]:
        return {"x": state["x"] + 1}

    graph = StateGraph(_State)
    names = [f"step{i}" for i in range(steps)]
    for name in names:
        graph.add_node(name, inc)
    for a, b in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(a, b)
    directory = Path(tempfile.mkdtemp(prefix="aiflow-bench-langgraph-"))
    conn = sqlite3.connect(directory / "checkpoints.sqlite", check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        if synchronous:
            conn.execute(f"PRAGMA synchronous={synchronous}")
        app = graph.compile(checkpointer=saver)

        def run() -> int:
            config: Any = {
                "configurable": {"thread_id": uuid.uuid4().hex},
                "recursion_limit": steps + 10,
            }
            return int(app.invoke({"x": 0}, config)["x"])

        yield run
    finally:
        conn.close()


def _measured(fn: Callable[[], int], extra_cpu: Callable[[], float]) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()`` (CPU: this process's plus ``extra_cpu``'s
    increase, read outside the timed span: for aiflow-nb it is an ``INFO`` round trip);
    fails unless W1 came out right."""
    e0 = extra_cpu()
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    cpu += extra_cpu() - e0
    if value != STEPS:
        raise RuntimeError(f"W1 returned {value}, not {STEPS}")
    return wall, cpu


def main() -> list[Figure]:
    if not _have_langgraph():
        print(
            "skipped: langgraph / langgraph-checkpoint-sqlite not installed "
            '(pip install -e ".[bench]")',
            flush=True,
        )
        return []
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.store import sync_redis

    from .bench_core import _define as define_core

    with (
        private_redis(),
        langgraph_w1() as langgraph_full,
        langgraph_w1(synchronous="NORMAL") as langgraph_normal,
    ):
        _, seq_sync, _, _, _ = define_core()  # type: ignore[no-untyped-call]
        local = ensure_local_worker(force=True)
        assert local is not None
        r = sync_redis()

        def redis_cpu() -> float:
            cpu = r.info("cpu")
            return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

        def aiflow_run() -> int:
            return int(seq_sync.start(n=STEPS).result(timeout=600))

        contenders: list[tuple[Callable[[], int], Callable[[], float]]] = [
            (aiflow_run, redis_cpu),
            (langgraph_full, lambda: 0.0),
            (langgraph_normal, lambda: 0.0),
        ]
        samples: list[list[tuple[float, float]]] = [[] for _ in contenders]
        for i in range(WARMUP + ROUNDS):
            for k in range(len(contenders)):  # rotate who goes first
                j = (i + k) % len(contenders)
                measured = _measured(*contenders[j])
                if i >= WARMUP:
                    samples[j].append(measured)
    (af, af_cpu), (lg, lg_cpu), (lgn, lgn_cpu) = (
        (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
        for runs in samples
    )
    speedup = lg / af
    ms = 1000
    return [
        Figure(f"W1 ({STEPS} steps) LangGraph + SqliteSaver, per run", lg * ms, "ms"),
        Figure("  CPU per run (this process)", lg_cpu * ms, "ms"),
        Figure("W1 LangGraph + SqliteSaver, synchronous=NORMAL", lgn * ms, "ms"),
        Figure("  CPU per run (this process)", lgn_cpu * ms, "ms"),
        Figure("W1 aiflow-nb (in-process worker, fenced), per run", af * ms, "ms"),
        Figure("  CPU per run (this process + Redis)", af_cpu * ms, "ms"),
        Figure("  per step: LangGraph + SqliteSaver", lg / STEPS * 1e6, "us"),
        Figure("  per step: aiflow-nb", af / STEPS * 1e6, "us"),
        Figure(
            "W1 speed-up, aiflow-nb over LangGraph + SqliteSaver",
            speedup,
            "x",
            target=f">= {TARGET:g}x",
            met=speedup >= TARGET,
        ),
        Figure("  over LangGraph, synchronous=NORMAL", lgn / af, "x"),
        Figure("  CPU per run, LangGraph (default) over aiflow-nb", lg_cpu / af_cpu, "x"),
        Figure("  CPU per run, LangGraph (NORMAL) over aiflow-nb", lgn_cpu / af_cpu, "x"),
    ]
