"""A workflow whose last step is not deterministic (it returns a fresh random token), for
the fencing tests: two attempts that both finished it would disagree on the output.
Served with ``aiflow worker --app aiflow_nb.examples.chaos --app apps.fencing_app``."""

from __future__ import annotations

import asyncio
import secrets

from aiflow_nb import component, keys, workflow
from aiflow_nb.examples.chaos import step
from aiflow_nb.runtime.context import current_frame, current_run


@component
async def token_step(delay: float) -> str:
    """Count the side effect (as ``chaos.step`` does), wait, return a random token."""
    ctx, frame = current_run(), current_frame()
    if ctx is not None and frame is not None:
        await ctx.async_client.hincrby(keys.side_effects(ctx.run_id), frame.key, 1)
    await asyncio.sleep(delay)
    return secrets.token_hex(8)


@workflow
async def token_steps(n: int = 3, delay: float = 0.3, last: float = 2.0) -> dict[str, object]:
    """``n`` counted steps, then one that returns a random token after ``last`` seconds."""
    done = [await step(i, delay) for i in range(n)]
    return {"steps": done, "token": await token_step(last)}
