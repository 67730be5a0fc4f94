"""Workflows and helpers shared by the trace, viewer and export tests (and the worker
subprocesses they start: import this module by name, it registers the workflows).

Workflow names start with ``trace`` (the registry is per process, shared by all tests).
Steps wait on *gates*, Redis keys a test sets, so a test decides when a span ends and
can look at a run while spans are still running.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiflow_nb import component, keys, progress, workflow
from aiflow_nb.runtime.emit import set_attributes
from aiflow_nb.store import sync_redis

from .helpers import wait_for as wait_for  # re-exported for the trace tests

MODEL = "local-test-model"


def gate_key(name: str) -> str:
    return f"{keys.runs(0)}:test-gate:{name}"


def open_gate(name: str) -> None:
    sync_redis().set(gate_key(name), 1)


def wait_gate(name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not sync_redis().exists(gate_key(name)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {name} never opened")
        time.sleep(0.02)


def calls(name: str) -> int:
    """How many times the step ``name`` started (a side effect counted in Redis)."""
    return int(sync_redis().incr(f"{keys.runs(0)}:test-calls:{name}"))


@component(retry=dict(attempts=3, initial=0.01, jitter=0))
def flaky(tag: str) -> str:
    """Fails on its first attempt of each tag, then succeeds."""
    if calls(f"flaky:{tag}") == 1:
        raise ConnectionError("simulated provider outage")
    return tag.upper()


@component
async def chat(prompt: str, gate: str = "") -> Any:
    """An LLM-shaped step: streams tokens, reports progress and gen_ai.* attributes."""
    set_attributes(
        **{
            "gen_ai.request.model": MODEL,
            "gen_ai.usage.input_tokens": 7,
            "gen_ai.usage.output_tokens": 3,
            "aiflow.cost_usd": 0.0021,
        }
    )
    for i, word in enumerate(["alpha ", "beta ", "gamma"]):
        if i == 1 and gate:
            await asyncio.to_thread(wait_gate, gate)
        progress(i + 1, 3, f"token {i + 1}")
        yield word


@component
def boom(x: int) -> int:
    raise ValueError(f"bad value {x}")


@component(fallback=-1)
def boom_with_fallback(x: int) -> int:
    raise ValueError(f"bad value {x}")


@component
def leaf(i: int, gate: str = "") -> int:
    if gate:
        wait_gate(gate)
    return i


@workflow
async def traced(tag: str, gate: str = "", fan: int = 3) -> dict[str, Any]:
    """flaky (one retry) -> chat (streams; may wait on ``gate``) -> fan-out of leaves."""
    word = flaky(tag)
    text = await chat(f"say {word}", gate=gate)
    leaves = await asyncio.gather(*(asyncio.to_thread(leaf, i) for i in range(fan)))
    return {"word": word, "text": text, "fallback": boom_with_fallback(1), "n": sum(leaves)}


@workflow(name="trace_fan_out")
async def fan_out(n: int, gate: str = "") -> int:
    """``n`` parallel leaves; the last one waits on ``gate`` when one is given."""
    done = await asyncio.gather(
        *(asyncio.to_thread(leaf, i, gate if i == n - 1 else "") for i in range(n))
    )
    return len(done)


@component(cache=600)
def lookup(key: str) -> str:
    return key[::-1]


@workflow(name="trace_cached")
def cached(key: str) -> str:
    """One cached step: a second run with the same key hits the cache."""
    return lookup(key)


@workflow(name="trace_failing")
def failing(x: int) -> int:
    return boom(x)


@workflow(name="trace_two_steps")
def two_steps(gate: str) -> list[int]:
    """step 0 at once; step 1 waits on ``gate`` (kill the worker meanwhile to crash it)."""
    return [leaf(0), leaf(1, gate)]


@component
def nap(seconds: float, gate: str = "") -> float:
    """Sleeps ``seconds``, then waits on ``gate`` when one is given."""
    time.sleep(seconds)
    if gate:
        wait_gate(gate)
    return seconds


@workflow(name="trace_naps")
def naps(gate: str) -> list[float]:
    """A 1 s step, then one waiting on ``gate`` (kill the worker meanwhile), then 0.2 s."""
    return [nap(1.0), nap(0.0, gate), nap(0.2)]


@component
def gated(gate: str) -> str:
    """Fails until ``gate`` is open."""
    if not sync_redis().exists(gate_key(gate)):
        raise RuntimeError(f"gate {gate} is closed")
    return "open"


@workflow(name="trace_fails_until_open")
def fails_until_open(gate: str) -> list[Any]:
    """A 0.3 s step, then one that fails until ``gate`` opens (resume it after)."""
    return [nap(0.3), gated(gate)]
