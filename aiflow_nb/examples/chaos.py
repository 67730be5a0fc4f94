"""Workflows that exercise the compute layer: serve them with
``aiflow worker --app aiflow_nb.examples.chaos``, kill workers, and check what happened.

Each ``step`` counts its side effect in Redis, outside the worker
(``keys.side_effects``), and checks the run's journal with it: a step whose result was
journaled before its body began must replay, never run again, so a journal entry that
ended earlier is counted as ``journaled_twice``. (An entry that ended later was written
by an attempt that took the run over while this body, begun first, could not reach
Redis: a stalled worker, an outage. That is the step in flight, which may run again.)
Each execution of a body is counted once: as a field of its own (``<key>@<token>``), so a
count re-sent after a lost reply (a client's retry, an outage) does not count it twice.
The crash tests, the soak and the benchmark use them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from .. import keys
from ..authoring.component import component
from ..authoring.workflow import workflow
from ..errors import InputTimeout
from ..runtime.context import current_frame, current_run
from ..runtime.waits import sleep, wait_for_event, wait_for_input
from ..serialization import loads
from ..store import sync_redis
from ..store.outage import CONNECTION_ERRORS, Outage

__all__ = [
    "JOURNALED_TWICE",
    "approval",
    "ask",
    "echo",
    "nap",
    "napper",
    "one_step",
    "side_effects",
    "signalled",
    "sleeper",
    "stamp",
    "step",
    "steps",
    "sync_approval",
    "sync_step",
    "sync_steps",
    "two_asks",
]

JOURNALED_TWICE = "!journaled-twice"
"""Key in ``side_effects`` counting step bodies that ran although journaled."""
_EXECUTION = "@"
"""Between a step key and the token of one execution of its body, in a field name."""


@dataclass(frozen=True)
class _Body:
    """One execution of a step's body: when it began (``time.time()``: the journal's
    clock, the same machine's) and a token naming it."""

    began: float = field(default_factory=time.time)
    token: str = field(default_factory=lambda: secrets.token_hex(6))

    def mark(self, key: str) -> str:
        return f"{key}{_EXECUTION}{self.token}"


def _count_pipeline(pipe: Any, body: _Body) -> bool:
    ctx, frame = current_run(), current_frame()
    if ctx is None or frame is None:
        return False
    pipe.hget(keys.run_journal(ctx.run_id), frame.key)
    pipe.hset(keys.side_effects(ctx.run_id), body.mark(frame.key), 1)
    return True


def _flag(journaled: bytes | None, body: _Body, client: Any) -> Any:
    """Count ``JOURNALED_TWICE`` when the journal entry ``journaled`` ended before the body
    began."""
    ctx = current_run()
    if journaled is not None and ctx is not None and loads(journaled)["e"] <= body.began:
        return client.hset(keys.side_effects(ctx.run_id), body.mark(JOURNALED_TWICE), 1)
    return None


async def _count(client: Any, body: _Body) -> None:
    """Count this step's side effect, through a Redis outage (the count is the test's
    instrument, not the step's work: an outage must not fail the step)."""
    outage = Outage("chaos step count")
    while True:
        pipe = client.pipeline(transaction=True)
        if not _count_pipeline(pipe, body):
            return
        try:
            journaled, _count = await pipe.execute()
            flagged = _flag(journaled, body, client)
            if flagged is not None:
                await flagged
            return
        except CONNECTION_ERRORS as exc:
            await asyncio.sleep(outage.failed(exc))


@component
async def step(i: int, delay: float) -> int:
    """One step: count the side effect, then take ``delay`` seconds."""
    body = _Body()
    ctx = current_run()
    if ctx is not None:
        await _count(ctx.async_client, body)
    await asyncio.sleep(delay)
    return i


@workflow
async def steps(n: int = 10, delay: float = 0.1) -> list[int]:
    """``n`` steps one after the other."""
    return [await step(i, delay) for i in range(n)]


@component
def sync_step(i: int, delay: float) -> int:
    """The sync twin of ``step`` (runs in a worker thread)."""
    body = _Body()
    client = sync_redis()
    pipe = client.pipeline(transaction=True)
    if _count_pipeline(pipe, body):
        journaled, _count = pipe.execute()
        _flag(journaled, body, client)
    time.sleep(delay)
    return i


@workflow
def sync_steps(n: int = 10, delay: float = 0.1) -> list[int]:
    """``n`` sync steps one after the other."""
    return [sync_step(i, delay) for i in range(n)]


@component
async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@workflow
async def sleeper(seconds: float = 1.0) -> float:
    """One step that sleeps ``seconds``."""
    return await nap(seconds)


@component
async def echo(x: int) -> int:
    return x


@workflow
async def one_step(x: int = 0) -> int:
    """A trivial one-step run (the throughput benchmark)."""
    return await echo(x)


@workflow
async def approval(timeout: float | None = None) -> dict[str, Any]:
    """A counted step, a wait for a yes/no answer (``InputTimeout`` after ``timeout``: the
    answer is then None), another counted step."""
    await step(0, 0.0)
    try:
        answer = wait_for_input("approve", bool, prompt="Approve?", timeout=timeout)
    except InputTimeout:
        answer = None
    await step(1, 0.0)
    return {"answer": answer}


@workflow
def sync_approval(timeout: float | None = None) -> dict[str, Any]:
    """The sync twin of ``approval`` (runs in a worker thread)."""
    sync_step(0, 0.0)
    try:
        answer = wait_for_input("approve", bool, prompt="Approve?", timeout=timeout)
    except InputTimeout:
        answer = None
    sync_step(1, 0.0)
    return {"answer": answer}


@component
def stamp(i: int) -> float:
    """The time it ran (journaled: a replay returns the first run's time)."""
    return time.time()


@workflow
async def napper(seconds: float = 2.0) -> float:
    """A durable ``sleep(seconds)`` between two stamps; returns the seconds between them."""
    before = stamp(0)
    await step(0, 0.0)
    sleep(seconds)
    return stamp(1) - before


@component
async def ask(name: str) -> Any:
    """A counted step, then a wait for the answer ``name`` (any JSON)."""
    await step(0, 0.0)
    return wait_for_input(name)


@workflow
async def two_asks() -> list[Any]:
    """Two branches of an ``asyncio.gather``, each waiting for its own answer."""
    return list(await asyncio.gather(ask("a"), ask("b")))


@workflow
async def signalled(timeout: float | None = None) -> Any:
    """A counted step, then the value of the signal ``go``."""
    await step(0, 0.0)
    return wait_for_event("go", timeout=timeout)


def side_effects(run_id: str, client: redis.Redis | None = None) -> dict[str, int]:
    """Step key -> times its body ran, plus ``JOURNALED_TWICE`` when it happened (a field
    with no execution token, e.g. another app's ``HINCRBY``, counts its value)."""
    raw = (client or sync_redis()).hgetall(keys.side_effects(run_id))
    counts: Counter[str] = Counter()
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else name
        key, execution, _token = text.rpartition(_EXECUTION)
        counts[key if execution else text] += 1 if execution else int(value)
    return dict(counts)
