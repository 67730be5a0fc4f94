"""The extended soak: 200 runs of a 10-step workflow across 3 worker processes while
workers are SIGKILLed, or SIGSTOPped past their lease TTL (their runs are resumed
elsewhere) and SIGCONTed (the stalled attempts are fenced: they write nothing more), and
the redis-server is SIGKILLed once mid-soak and restarted on its AOF. 0 runs lost, one
terminal event each, no journaled step executed twice, no gap in any followed stream
(the invariants: ``support/soak.check_run``)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.outage import PrivateRedis, private_redis_fixture  # noqa: F401
from support.soak import RUNS, Chaos, soak

FAULTS = ("kill", "kill", "kill", "stop", "stop", "stop")
STOPPED = (3.5, 5.0)
"""Seconds a worker stays stopped: past its lease TTL (2 s) and the monitor lock's (2 s,
when the stopped worker held it) and a sweep, so its runs are resumed elsewhere first."""
OUTAGE = 3.0
"""Seconds the redis-server stays down: past the TTL too (leases expire meanwhile)."""
SUBMIT_EVERY = 0.1
"""Runs are submitted over ~20 s, so every fault hits runs in flight."""


@dataclass
class Plan:
    """The faults still to do, in a random order; the Redis restart at half-way."""

    server: PrivateRedis
    rng: random.Random
    todo: list[str] = field(default_factory=list)
    restarted: bool = False

    def __post_init__(self) -> None:
        self.todo = list(FAULTS)
        self.rng.shuffle(self.todo)

    def __call__(self, chaos: Chaos, submitted: int) -> None:
        chaos.wake()
        if not self.restarted and submitted >= RUNS // 2:
            self.server.kill()
            time.sleep(OUTAGE)
            self.server.restart()
            self.restarted = True
        elif self.todo and chaos.due():  # at most one worker stopped at a time
            fault = next((f for f in self.todo if f == "kill" or not chaos.stopped), None)
            if fault is not None:
                self.todo.remove(fault)
                if fault == "kill":
                    chaos.kill()
                else:
                    chaos.stop(self.rng.uniform(*STOPPED))

    def done(self, chaos: Chaos) -> bool:
        return self.restarted and not self.todo and not chaos.stopped


@pytest.mark.slow
def test_soak_200_runs_under_sigkill_sigstop_and_a_redis_restart(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    plan = Plan(private_redis, random.Random(12))
    done = soak(tmp_path, 11, plan, plan.done, submit_every=SUBMIT_EVERY, budget=180)
    chaos = done.chaos
    taken = chaos.taken_over()
    print(
        f"extended soak: {done.seconds:.0f} s, {chaos.kills} kills, {chaos.stops} stops "
        f"({len(chaos.held)} runs in hand, {taken} taken over), 1 Redis restart, "
        f"{done.resumed} interrupted attempts resumed"
    )
    assert chaos.kills == 3 and chaos.stops == 3 and plan.restarted
    assert taken > 0, "no stopped worker's run was resumed elsewhere: fencing not exercised"
    assert done.resumed > 0
