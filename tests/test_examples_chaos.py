"""The chaos steps' instrument (``examples/chaos.py``): a body that began after its step's
result was journaled is counted ``JOURNALED_TWICE``; a body that began first (it stalled
before its count reached Redis: a SIGSTOPped worker, an outage) while a takeover
journaled the step is the step in flight, which may run again, and is not."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

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


class _ResentPipeline:
    """A transaction pipeline whose ``execute`` is sent twice, as redis-py's retry re-sends
    one whose reply was lost after Redis applied it (a socket timeout after a stall, a
    restart). A stand-in: a real lost reply cannot be made to happen on cue."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    async def execute(self) -> Any:
        commands = list(self._pipe.command_stack)
        await self._pipe.execute()  # applied, its reply "lost"
        self._pipe.command_stack.extend(commands)
        return await self._pipe.execute()


class _ResendingClient:
    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def pipeline(self, transaction: bool = True) -> _ResentPipeline:
        return _ResentPipeline(self._client.pipeline(transaction=transaction))


def test_a_count_re_sent_after_a_lost_reply_counts_the_body_once() -> None:
    run_id = "chaos-resent"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        client = async_redis()
        resending = cast(Any, _ResendingClient(client))
        writer = EventWriter(run_id, client, loop)
        ctx = RunContext(run_id, "steps", writer, loop, sync_redis(), resending)
        run_var.set(ctx)
        frame_var.set(Frame.root("steps"))
        assert await step(0, 0.0) == 0
        await writer.flush()

    run_in_new_loop(main())
    assert side_effects(run_id) == {KEY: 1}
