"""Workflows of the API benchmark, importable by its server and worker subprocesses."""

from __future__ import annotations

import asyncio

from aiflow_nb import component, progress, workflow


@component
def add_one(x: int) -> int:
    return x + 1


@workflow
def one_step(x: int) -> int:
    """A one-step workflow: the API round trip is measured against it."""
    return add_one(x)


@workflow
async def pulse(n: int, interval: float, lead: float) -> int:
    """Wait ``lead`` seconds (followers connect), then emit ``n`` progress events."""
    await asyncio.sleep(lead)
    for i in range(n):
        progress(i + 1, n)
        await asyncio.sleep(interval)
    return n
