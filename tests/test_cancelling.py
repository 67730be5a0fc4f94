"""``cancel_and_wait`` ends tasks that swallow a cancellation: on Python 3.11 one that lands
as an inner ``asyncio.wait_for`` completes is lost, and redis-py sends every command under
one (its 5 s default socket timeout). A worker's heartbeat loop cancelled mid-send went on
beating, and the draining worker never exited (clean-clone CI, twice)."""

from __future__ import annotations

import asyncio

from aiflow_nb.cancelling import cancel_and_wait
from aiflow_nb.store import run_in_new_loop
from aiflow_nb.store.connection import new_async_client, redis_url


def test_a_task_that_swallows_two_cancellations_is_cancelled_until_it_ends() -> None:
    seen: list[str] = []

    async def stubborn() -> None:
        for _ in range(2):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                seen.append("swallowed")  # as a 3.11 wait_for does
        await asyncio.sleep(60)

    async def main() -> asyncio.Task[None]:
        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel_and_wait(task), 5)
        return task

    task = asyncio.run(main())
    assert task.cancelled() and seen == ["swallowed", "swallowed"]


def test_a_loop_of_redis_commands_cancelled_mid_send_ends() -> None:
    """The heartbeat's shape on the session's real Redis: commands back to back, cancelled
    at many points of their send and read."""

    async def main() -> list[bool]:
        client = new_async_client(redis_url())
        ended: list[bool] = []

        async def beats() -> None:
            while True:
                pipe = client.pipeline(transaction=False)
                pipe.hset("{t}:beat", "at", "1")
                pipe.pexpire("{t}:beat", 1500)
                pipe.hget("{t}:beat", "at")
                await pipe.execute()

        for attempt in range(40):
            task = asyncio.create_task(beats())
            await asyncio.sleep(attempt * 0.0001)  # a different point of the loop each time
            stopper = asyncio.ensure_future(cancel_and_wait(task))
            done, _ = await asyncio.wait({stopper}, timeout=5)
            ended.append(bool(done) and task.cancelled())
            if not done:
                task.cancel()
        await client.delete("{t}:beat")
        await client.aclose()
        return ended

    ended = run_in_new_loop(main())
    assert ended == [True] * 40, f"{ended.count(False)} of 40 loops went on after cancel"
