"""Core benchmarks (issue 2): per-step overhead, fan-out, replay.

1. A 1,000-step sequential workflow of trivial components, events and journal on, vs
   plain function calls. Target: median <= 100 us per step.
2. One run with 1,000 concurrent async components each awaiting 0.2 s. Target: wall
   <= 1.3x the ideal 0.2 s (the baseline: asyncio.gather of the bare coroutines).
3. ``events()`` over a finished run of 10,000 events. Target: <= 250 ms (baseline: a raw
   XRANGE of the same stream, without parsing).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from ._common import Figure, median_time, private_redis

STEPS = 1000
FANOUT = 1000
EVENTS = 10_000


def _define():  # type: ignore[no-untyped-def]
    from aiflow_nb import component, progress, workflow

    @component
    def inc(x: int) -> int:
        return x + 1

    @component
    async def ainc(x: int) -> int:
        return x + 1

    @workflow
    def seq_sync(n: int) -> int:
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    @workflow
    async def seq_async(n: int) -> int:
        x = 0
        for _ in range(n):
            x = await ainc(x)
        return x

    @component
    async def wait(i: int, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return i

    @workflow
    async def fan(n: int, seconds: float) -> int:
        return len(await asyncio.gather(*(wait(i, seconds) for i in range(n))))

    @workflow
    def chatty(n: int) -> int:
        for i in range(n):
            progress(i, n)
        return n

    return inc.fn, seq_sync, seq_async, fan, chatty


def _run_wall(wf, **inputs) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    wf.start(**inputs).result(timeout=600)
    return time.perf_counter() - t0


def main() -> list[Figure]:
    with private_redis():
        plain, seq_sync, seq_async, fan, chatty = _define()
        seq_sync.run(n=10)  # warm up the worker and connections

        def plain_loop() -> None:
            x = 0
            for _ in range(STEPS):
                x = plain(x)

        base = median_time(plain_loop, 5) / STEPS
        sync_step = statistics.median(_run_wall(seq_sync, n=STEPS) for _ in range(5)) / STEPS
        async_step = statistics.median(_run_wall(seq_async, n=STEPS) for _ in range(5)) / STEPS

        async def bare() -> None:
            await asyncio.gather(*(asyncio.sleep(0.2) for _ in range(FANOUT)))

        fan_base = median_time(lambda: asyncio.run(bare()), 3)
        fan_wall = statistics.median(_run_wall(fan, n=FANOUT, seconds=0.2) for _ in range(3))

        handle = chatty.start(n=EVENTS)
        handle.result(timeout=120)
        from aiflow_nb import keys
        from aiflow_nb.store import sync_redis

        stream = keys.run_events(handle.run_id)
        raw = median_time(lambda: sync_redis().xrange(stream), 5)
        replay = median_time(lambda: sum(1 for _ in handle.events()), 5)
        count = sum(1 for _ in handle.events())

    return [
        Figure(
            "per-step overhead, sync components",
            sync_step * 1e6,
            "us",
            base * 1e6,
            "plain call",
            "<= 100 us",
            sync_step * 1e6 <= 100,
        ),
        Figure(
            "per-step overhead, async components",
            async_step * 1e6,
            "us",
            base * 1e6,
            "plain call",
            "<= 100 us",
            async_step * 1e6 <= 100,
        ),
        Figure(
            f"fan-out {FANOUT} x 0.2 s, wall",
            fan_wall,
            "s",
            0.2,
            "ideal 0.2 s",
            "<= 1.3x ideal",
            fan_wall <= 0.26,
        ),
        Figure("  (bare asyncio.gather, same run)", fan_base, "s", 0.2, "ideal 0.2 s"),
        Figure(
            f"replay events() of {count} events",
            replay * 1000,
            "ms",
            raw * 1000,
            "raw XRANGE",
            "<= 250 ms",
            replay <= 0.25,
        ),
    ]
