"""Workflows shared by the core tests and the subprocesses they start.

Side effects are counted in Redis (INCR), outside any worker, so a test can tell how many
times each step really ran.
"""

from __future__ import annotations

import os
import time

from aiflow_nb import component, workflow
from aiflow_nb import keys as _keys
from aiflow_nb.store import sync_redis


def count_key(step: str) -> str:
    return f"{_keys.runs(0)}:test-effects:{step}"


def effects(step: str) -> int:
    raw = sync_redis().get(count_key(step))
    return int(raw) if raw else 0


@component
def slow_step(i: int, delay: float) -> int:
    sync_redis().incr(count_key(f"step{i}"))
    time.sleep(delay)
    return i * 10


@workflow
def crashable(steps: int, delay: float) -> list[int]:
    """Runs ``steps`` steps of ``delay`` seconds each; each step counts its side effect."""
    return [slow_step(i, delay) for i in range(steps)]


@workflow
def pid_of_worker() -> int:
    return os.getpid()
