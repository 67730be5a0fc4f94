"""The Redis work per run and per step (issue 16, "lean per run").

1. Commands and round trips per trivial run (``examples.chaos.one_step``, submitted from
   this process, executed by the in-process worker): commands *executed* are ``INFO
   commandstats`` calls (as Redis counts them: a script's own commands included; this
   benchmark's INFO excluded), commands *sent* those the clients of this process packed
   (a script call is one), round trips their packed sends (a pipeline or a script call
   is one); Redis CPU per run from ``INFO cpu`` (the server process) and from the
   commandstats ``usec`` (the commands' own time). The idle workers' traffic, measured
   over an idle second first, is subtracted. Baseline: one ``PING``.
2. The same per step: a run of ``STEPS`` sequential I/O-bound async steps (each awaits
   1 ms, so each step's events go out on their own) less a run of one.
3. Per-run fixed overhead: ``start()`` -> ``result()`` of a one-step run with the
   in-process worker, median. Baseline: one ``PING`` round trip, same run.
4. Per-step overhead, sync and async (fencing on, as every worker runs): the wall time
   of ``STEPS`` sequential trivial steps less that of a run of none, per step, and the
   same in this process's CPU time (steadier on a shared machine). Baseline: a plain
   call.
5. Throughput with 2 ``aiflow worker`` processes (``bench_workers``' workload), and the
   CPU per run of every process doing the work (workers, Redis, the submitter) with the
   ceiling of 2 cores it implies. Baseline: the executor in this process without queue
   or lease.

Targets (issue 16): <= 15 commands and <= 4 round trips per trivial run, one-step fixed
overhead <= 1.5 ms, per step <= 22 us sync / <= 25 us async, >= 2,500 runs/s with 2
workers.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._common import Figure, median_time, private_redis

RUNS = 1000
STEPS = 1000
LATENCY_RUNS = 300
IO_STEPS = 200


@dataclass
class Cost:
    """Redis work over an interval: commands, client round trips, server CPU (s) and
    the commands' own time (commandstats usec)."""

    commands: float
    sent: float
    round_trips: float
    cpu: float
    usec: float

    def __sub__(self, other: Cost) -> Cost:
        return Cost(*(a - b for a, b in zip(self._values(), other._values(), strict=True)))

    def scaled(self, factor: float) -> Cost:
        return Cost(*(a * factor for a in self._values()))

    def _values(self) -> tuple[float, ...]:
        return (self.commands, self.sent, self.round_trips, self.cpu, self.usec)


_sends = itertools.count()
_packed = itertools.count()
_OWN = ("info",)


@contextmanager
def counted_sends() -> Iterator[None]:
    """Count every packed send (and every command packed) of a sync or async redis-py
    connection in this process."""
    import redis.asyncio.connection as aconn
    import redis.connection as sconn

    from aiflow_nb.store.packing import HiredisPacking

    sync_send = sconn.AbstractConnection.send_packed_command
    async_send = aconn.AbstractConnection.send_packed_command
    packers = {
        cls: cls.pack  # type: ignore[attr-defined]
        for cls in (sconn.HiredisRespSerializer, sconn.PythonRespSerializer)
    }
    async_pack = aconn.AbstractConnection.pack_command
    hiredis_pack = HiredisPacking.pack_command  # the project's asyncio connections

    def counting(pack: Callable[..., Any]) -> Callable[..., Any]:
        def packed(self: Any, *args: Any) -> Any:
            if pack is async_pack and isinstance(self, HiredisPacking):
                return pack(self, *args)  # its fallback: counted by hiredis_pack already
            next(_packed)
            return pack(self, *args)

        return packed

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        next(_sends)
        sync_send(self, command, check_health)

    async def asend(self: Any, command: Any, check_health: bool = True) -> None:
        next(_sends)
        await async_send(self, command, check_health)

    sconn.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    aconn.AbstractConnection.send_packed_command = asend  # type: ignore[method-assign]
    aconn.AbstractConnection.pack_command = counting(async_pack)  # type: ignore[method-assign]
    HiredisPacking.pack_command = counting(hiredis_pack)  # type: ignore[method-assign]
    for cls, pack in packers.items():
        cls.pack = counting(pack)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sconn.AbstractConnection.send_packed_command = sync_send  # type: ignore[method-assign]
        aconn.AbstractConnection.send_packed_command = async_send  # type: ignore[method-assign]
        aconn.AbstractConnection.pack_command = async_pack  # type: ignore[method-assign]
        HiredisPacking.pack_command = hiredis_pack  # type: ignore[method-assign]
        for cls, pack in packers.items():
            cls.pack = pack  # type: ignore[attr-defined]


def sends() -> tuple[int, int]:
    """Packed sends and commands packed so far (reading the counters does not count)."""
    global _sends, _packed
    value, packed = next(_sends), next(_packed)
    _sends, _packed = itertools.count(value), itertools.count(packed)
    return value, packed


def _snapshot(r: Any) -> tuple[Cost, dict[str, int]]:
    trips, sent = sends()
    stats = r.info("commandstats")
    cpu = r.info("cpu")
    trips_after, sent_after = sends()
    calls = {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in stats.items()
        if name.removeprefix("cmdstat_") not in _OWN
    }
    usec = sum(
        float(v["usec"]) for name, v in stats.items() if name.removeprefix("cmdstat_") not in _OWN
    )
    total_cpu = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
    # this snapshot's own two INFO round trips are not the workload's
    own = (trips_after - trips, sent_after - sent)
    return Cost(sum(calls.values()), sent - own[1], trips - own[0], total_cpu, usec), calls


def measure(r: Any, work: Callable[[], None], idle_rate: Cost | None = None) -> Cost:
    """Redis work done by ``work()`` (less ``idle_rate`` per second of it)."""
    before, _ = _snapshot(r)
    t0 = time.perf_counter()
    work()
    elapsed = time.perf_counter() - t0
    after, _ = _snapshot(r)
    cost = after - before
    cost.round_trips -= 2  # the first snapshot's INFOs, counted by the second
    cost.sent -= 2
    if idle_rate is not None:
        cost = cost - idle_rate.scaled(elapsed)
    return cost


def _wait_completed(worker: Any, target: int, timeout: float = 120) -> None:
    """Until ``worker`` has completed ``target`` runs (and their last writes are out)."""
    deadline = time.monotonic() + timeout
    while worker.completed < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {worker.completed} of {target} runs completed")
        time.sleep(0.001)
    while worker.tasks:  # a completed run's queue entry may still be being acknowledged
        time.sleep(0.001)


def _define_io():  # type: ignore[no-untyped-def]
    from aiflow_nb import component, workflow

    @component
    async def lean_io(x: int) -> int:
        await asyncio.sleep(0.001)
        return x + 1

    @workflow
    async def lean_io_steps(n: int) -> int:
        x = 0
        for _ in range(n):
            x = await lean_io(x)
        return x

    return lean_io_steps


def _wall(wf: Any, n: int) -> tuple[float, float]:
    """Wall and process CPU seconds of a run of ``wf`` with ``n`` steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    wf.start(n=n).result(timeout=600)
    return time.perf_counter() - t0, time.process_time() - c0


def per_step(wf: Any, trials: int = 5) -> tuple[float, float]:
    """Wall and CPU seconds per step: (a run of ``STEPS`` steps - a run of none) /
    ``STEPS``, medians. The CPU is this process's (the worker's threads, every one): on
    a shared machine it moves less with the other processes' load than the wall time."""
    empty = [_wall(wf, 0) for _ in range(20)]
    full = [_wall(wf, STEPS) for _ in range(trials)]
    return tuple(  # type: ignore[return-value]
        (statistics.median(f[k] for f in full) - statistics.median(e[k] for e in empty)) / STEPS
        for k in (0, 1)
    )


def throughput(workers: int = 2) -> tuple[float, float]:
    """``bench_workers``' throughput (trivial runs submitted from here, executed by
    ``workers`` worker processes): runs/s, and the CPU seconds per run of every process
    doing the work (the workers, Redis, this submitting process), which the other load
    on a shared machine moves far less than the wall time."""
    import psutil

    from aiflow_nb.store import sync_redis

    from .bench_workers import RUNS as COUNT
    from .bench_workers import _drain_time, _spawn, _stop, _wait, _workers

    version = f"lean{workers}"
    procs = [_spawn("--version", version) for _ in range(workers)]
    r = sync_redis()

    def cpu() -> float:
        used = r.info("cpu")
        workers_cpu = sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)
        redis_cpu = float(used["used_cpu_sys"]) + float(used["used_cpu_user"])
        return workers_cpu + redis_cpu + time.process_time()

    try:
        _wait(lambda: len(_workers(procs)) == workers, 30, f"{workers} workers")
        _drain_time(200, version)  # warm up (imports, connections, code paths)
        before = cpu()
        elapsed = _drain_time(COUNT, version)
        return COUNT / elapsed, (cpu() - before) / COUNT
    finally:
        _stop(procs)


def packing() -> tuple[float, float, int]:
    """Seconds to pack a trivial run's batch script call (the longest command of one
    in-process run, caught as the worker packs it) by redis-py's asyncio connection and by
    the project's (hiredis), and its argument count."""
    from redis.asyncio.connection import Connection

    from aiflow_nb.examples import chaos
    from aiflow_nb.store.packing import HiredisPacking, packed

    calls: list[tuple[Any, ...]] = []
    pack = HiredisPacking.pack_command

    def catching(self: Any, *args: Any) -> Any:
        calls.append(args)
        return pack(self, *args)

    HiredisPacking.pack_command = catching  # type: ignore[method-assign]
    try:
        chaos.one_step.run(x=1)
    finally:
        HiredisPacking.pack_command = pack  # type: ignore[method-assign]
    call = max(calls, key=len)
    theirs, ours = Connection(), packed(Connection)()
    python, hiredis = (median_time(lambda c=c: c.pack_command(*call), 2000) for c in (theirs, ours))
    return python, hiredis, len(call)


def main() -> list[Figure]:
    from aiflow_nb.examples import chaos
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.ops.submit import submit
    from aiflow_nb.store import sync_redis

    from .bench_core import _define as define_core
    from .bench_workers import baseline

    with private_redis(), counted_sends():
        plain, lean_sync, lean_async, _, _ = define_core()  # bench_core's trivial steps
        lean_io_steps = _define_io()
        local = ensure_local_worker(force=True)
        assert local is not None
        worker = local.worker
        r = sync_redis()
        for _ in range(50):  # warm up: code paths
            chaos.one_step.run(x=1)
            lean_async.run(n=3)
        ping = median_time(r.ping, 200)

        def trivial_runs() -> None:
            target = worker.completed + RUNS
            for i in range(RUNS):
                submit("one_step", {"x": i})
            _wait_completed(worker, target)

        trivial_runs()  # warm up: the connections a burst opens
        idle = measure(r, lambda: time.sleep(1.0)).scaled(1.0)
        run_cost = measure(r, trivial_runs, idle).scaled(1 / RUNS)
        one = measure(r, lambda: lean_io_steps.run(n=1), idle)
        many = measure(r, lambda: lean_io_steps.run(n=IO_STEPS + 1), idle)
        step_cost = (many - one).scaled(1 / IO_STEPS)

        fixed = statistics.median(
            _timed(lambda: chaos.one_step.run(x=1)) for _ in range(LATENCY_RUNS)
        )

        def plain_loop() -> None:
            x = 0
            for _ in range(STEPS):
                x = plain(x)

        call = median_time(plain_loop, 5) / STEPS
        (sync_step, sync_cpu), (async_step, async_cpu) = per_step(lean_sync), per_step(lean_async)
        pack_python, pack_hiredis, pack_args = packing()
    with private_redis():
        base = baseline()
        two, run_cpu = throughput(2)

    us = 1e6
    return [
        Figure(
            "commands sent per trivial run",
            run_cost.sent,
            "commands",
            target="<= 15",
            met=run_cost.sent <= 15,
        ),
        Figure("commands executed per trivial run (in scripts too)", run_cost.commands, "commands"),
        Figure(
            "round trips per trivial run",
            run_cost.round_trips,
            "round trips",
            target="<= 4",
            met=run_cost.round_trips <= 4,
        ),
        Figure(
            "Redis CPU per trivial run (INFO cpu)", run_cost.cpu * us, "us", ping * us, "one PING"
        ),
        Figure("  commands' own time (commandstats usec)", run_cost.usec, "us"),
        Figure("  one Redis core's ceiling, trivial runs/s", 1 / run_cost.cpu, "runs/s"),
        Figure("commands sent per I/O-bound step", step_cost.sent, "commands"),
        Figure("commands executed per I/O-bound step", step_cost.commands, "commands"),
        Figure("round trips per I/O-bound step", step_cost.round_trips, "round trips"),
        Figure("Redis CPU per I/O-bound step (INFO cpu)", step_cost.cpu * us, "us"),
        Figure(
            "fixed overhead, one-step run start -> result",
            fixed * 1000,
            "ms",
            ping * 1000,
            "one PING round trip",
            "<= 1.5 ms",
            fixed <= 0.0015,
        ),
        Figure(
            f"per-step overhead, sync ({STEPS} steps, fenced)",
            sync_step * us,
            "us",
            call * us,
            "plain call",
            "<= 22 us",
            sync_step * us <= 22,
        ),
        Figure(
            f"per-step overhead, async ({STEPS} steps, fenced)",
            async_step * us,
            "us",
            call * us,
            "plain call",
            "<= 25 us",
            async_step * us <= 25,
        ),
        Figure("  CPU per step, sync (this process)", sync_cpu * us, "us", call * us, "plain call"),
        Figure(
            "  CPU per step, async (this process)", async_cpu * us, "us", call * us, "plain call"
        ),
        Figure(
            f"packing a trivial run's batch script call, {pack_args} arguments (store/packing.py)",
            pack_hiredis * us,
            "us",
            pack_python * us,
            "redis-py's asyncio packer",
        ),
        Figure(
            "throughput, 2 workers (submit + complete)",
            two,
            "runs/s",
            base,
            "executor in-process, no queue",
            ">= 2,500 runs/s",
            two >= 2500,
        ),
        Figure("  CPU per run, all processes (2 workers, Redis, submitter)", run_cpu * us, "us"),
        Figure("  so 2 cores' ceiling, trivial runs/s", 2 / run_cpu, "runs/s"),
    ]


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
