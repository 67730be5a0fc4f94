"""Soak: 200 runs of a 10-step workflow across 3 worker processes while a chaos loop
SIGKILLs a random worker every few seconds and starts a new one."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aiflow_nb.access.handle import RunHandle
from aiflow_nb.events.reader import aread_events
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops.submit import submit

from support.ops import fleet

RUNS, STEPS = 200, 10
FOLLOW_EVERY = 4
"""Every 4th run is followed live by a reader (one blocking connection each)."""
SOAK_ENV = {"AIFLOW_HEARTBEAT_INTERVAL": "0.25", "AIFLOW_HEARTBEAT_TTL": "2.0"}
"""A TTL with room for a worker starved of CPU on a 2-core machine under chaos."""
WORKER_ARGS = ("--max-restarts", "50", "--concurrency", "100")


class Followers(threading.Thread):
    """Follows runs' streams live (one asyncio task each), keeping the event ids."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, list[str]] = {}
        self.loop = asyncio.new_event_loop()
        self.tasks: list[asyncio.Future[None]] = []

    def run(self) -> None:
        self.loop.run_forever()

    def follow(self, run_id: str) -> None:
        async def read() -> None:
            ids = self.seen.setdefault(run_id, [])
            async for event in aread_events(run_id, block_ms=500):
                ids.append(event.id)

        self.tasks.append(asyncio.run_coroutine_threadsafe(read(), self.loop))  # type: ignore[arg-type]

    def finish(self, timeout: float) -> None:
        for task in self.tasks:
            task.result(timeout)  # type: ignore[call-arg]
        self.loop.call_soon_threadsafe(self.loop.stop)


def _check_run(handle: Any, followed: list[str] | None) -> int:
    """Assert one run's invariants; return its number of interruptions."""
    rec = handle.record()
    assert rec["status"] == "completed" and rec["output"] == list(range(STEPS)), rec
    interruptions = rec["attempt"] - 1
    events = list(handle.events(follow=False))
    ids = [e.id for e in events]
    assert followed is None or followed == ids, f"{handle.run_id}: a live reader saw a gap"
    assert len(set(ids)) == len(ids) and ids == sorted(
        ids, key=lambda i: tuple(int(part) for part in i.split("-"))
    )
    types = [e.type for e in events]
    assert types.count("run.started") == 1 and types.count("run.resumed") == interruptions
    assert types[-1] == "run.completed" and types.count("run.completed") == 1
    completed = [e.span_id for e in events if e.type == "span.completed" and e.name == "step"]
    assert len(completed) == len(set(completed)) == STEPS, "a journaled step completed twice"
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects, f"{handle.run_id}: a journaled step ran again"
    # unjournaled steps in flight at a kill may run again (at-least-once), once per kill
    assert len(effects) == STEPS and max(effects.values()) <= 1 + interruptions
    return interruptions


@pytest.mark.slow
def test_soak_200_runs_under_random_sigkills(tmp_path: Path) -> None:
    rng = random.Random(7)
    followers = Followers()
    followers.start()
    kills = 0
    with fleet(tmp_path) as start:
        workers = [start(*WORKER_ARGS, env=SOAK_ENV) for _ in range(3)]
        for w in workers:
            w.ready()
        handles = []
        next_kill = time.monotonic() + rng.uniform(1.0, 2.5)
        t0 = time.monotonic()
        while len(handles) < RUNS or kills < 6:
            if len(handles) < RUNS:
                handle = RunHandle(submit("steps", {"n": STEPS, "delay": 0.05}))
                if len(handles) % FOLLOW_EVERY == 0:
                    followers.follow(handle.run_id)
                handles.append(handle)
            if time.monotonic() >= next_kill:
                victim = rng.choice(workers)
                victim.kill()
                kills += 1
                workers.remove(victim)
                workers.append(start(*WORKER_ARGS, env=SOAK_ENV))
                next_kill = time.monotonic() + rng.uniform(1.5, 3.0)
            time.sleep(0.05)
            assert time.monotonic() - t0 < 120, "chaos loop overran"
        for handle in handles:
            handle.wait(timeout=max(1.0, 150 - (time.monotonic() - t0)))
        followers.finish(timeout=30)

    interruptions = sum(_check_run(h, followers.seen.get(h.run_id)) for h in handles)
    assert len(followers.seen) == RUNS // FOLLOW_EVERY
    print(f"soak: {kills} kills, {interruptions} interrupted attempts resumed")
    assert kills >= 6 and interruptions > 0  # the chaos really hit runs in flight
