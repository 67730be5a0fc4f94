"""The chaos steps' instrument (``examples/chaos.py``): a body that began after its step's
result was journaled is counted ``JOURNALED_TWICE``; a body that began first (it stalled
before its count reached Redis: a SIGSTOPped worker, an outage) while a takeover
journaled the step is the step in flight, which may run again, and is not."""

from __future__ import annotations

import asyncio
import time

import pytest

from aiflow_nb import keys
from aiflow_nb.events.writer import EventWriter
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects, step
from aiflow_nb.runtime.context import Frame, RunContext, frame_var, run_var
from aiflow_nb.serialization import dumps
from aiflow_nb.store import async_redis, run_in_new_loop, sync_redis

KEY = "steps/step#0"


def _run_step_with_journal_ending_at(run_id: str, offset: float) -> dict[str, int]:
    """Run the body of step 0 of ``run_id`` (an attempt whose journal was empty when it
    started) while Redis holds that step's entry, ended ``offset`` s after the body began
    (another attempt's); the side effects counted."""

    async def main() -> None:
        began = time.time()
        doc = dumps({"h": "", "r": 0, "s": began + offset - 0.05, "e": began + offset})
        sync_redis().hset(keys.run_journal(run_id), KEY, doc)
        loop = asyncio.get_running_loop()
        client = async_redis()
        ctx = RunContext(
            run_id, "steps", EventWriter(run_id, client, loop), loop, sync_redis(), client
        )
        run_var.set(ctx)
        frame_var.set(Frame.root("steps"))
        assert await step(0, 0.0) == 0
        await ctx.writer.flush()

    run_in_new_loop(main())
    return side_effects(run_id)


@pytest.mark.parametrize(
    ("offset", "flagged"),
    [(1.0, False), (-1.0, True)],
    ids=["journaled-by-a-takeover-after-the-body-began", "journaled-before-the-body-began"],
)
def test_a_body_counts_as_journaled_twice_only_if_the_journal_had_it_before_it_began(
    offset: float, flagged: bool
) -> None:
    effects = _run_step_with_journal_ending_at(f"chaos-{offset}", offset)
    assert effects[KEY] == 1
    assert (JOURNALED_TWICE in effects) is flagged, effects
