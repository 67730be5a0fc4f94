"""Workflows of the API benchmark, importable by its server and worker subprocesses."""

from __future__ import annotations

import asyncio

from aiflow_nb import component, keys, progress, workflow
from aiflow_nb.store import sync_redis


@component
def add_one(x: int) -> int:
    return x + 1


@workflow
def one_step(x: int) -> int:
    """A one-step workflow: the API round trip is measured against it."""
    return add_one(x)


def gate_key(name: str) -> str:
    """A benchmark-only key under the namespace, set when the followers are all connected."""
    return f"{keys.runs(0)}:bench-gate:{name}"


@workflow
async def pulse(n: int, interval: float, gate: str) -> int:
    """Wait until ``gate`` is opened (every follower connected), then emit ``n`` progress
    events ``interval`` seconds apart."""
    while not sync_redis().exists(gate_key(gate)):
        await asyncio.sleep(0.01)
    for i in range(n):
        progress(i + 1, n)
        await asyncio.sleep(interval)
    return n
