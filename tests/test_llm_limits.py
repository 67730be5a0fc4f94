"""Shared rate limits on the real Redis: declaring them, token reservations and their
settlement, a concurrency cap seen by the server, and three processes sharing one
120 rpm bucket as the local LLM server's own request log shows."""

from __future__ import annotations

import asyncio
import time

import pytest

import aiflow_nb as af
from aiflow_nb import limits
from aiflow_nb.llm import AsyncOpenAI
from aiflow_nb.store import run_in_new_loop

from support.llm import fake_llm, served
from support.processes import python_subprocess

CALLER = """
import asyncio, time
from aiflow_nb.llm import AsyncOpenAI

async def main():
    client = AsyncOpenAI(base_url={url!r}, api_key="unused", provider_name="shared")
    while time.time() < {start}:
        await asyncio.sleep(0.005)
    await asyncio.gather(*(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": f"{{i}}"}}])
        for i in range({calls})))

asyncio.run(main())
"""


def test_limits_are_declared_read_and_cleared_with_clear_errors() -> None:
    limit = limits.set("openai:gpt-4o-mini", rpm=500, tpm=200_000, concurrency=20)
    assert limits.get("openai:gpt-4o-mini") == limit
    assert limits.names() == ["openai:gpt-4o-mini"]
    assert limits.clear("openai:gpt-4o-mini") and limits.get("openai:gpt-4o-mini") is None
    for bad in ({"rpm": 0}, {"tpm": -5}, {"concurrency": 1.5}, {}):
        with pytest.raises(ValueError):
            limits.set("x", **bad)
    with pytest.raises(ValueError, match="braces"):
        limits.set("a{b}", rpm=1)


def test_token_reservations_queue_and_settle_against_real_usage() -> None:
    limits.set("tokens", tpm=6000)  # 100 tokens/s, a 1 s burst of 100
    first = limits.acquire("tokens", tokens=100)
    assert first.waited < 0.3
    first.release(used_tokens=100)
    second = limits.acquire("tokens", tokens=50)  # the bucket is empty: ~0.5 s
    assert 0.35 < second.waited < 1.5
    second.release(used_tokens=0)  # it used nothing: its 50 tokens come back
    third = limits.acquire("tokens", tokens=50)
    assert third.waited < 0.3
    assert limits.acquire("unlimited", tokens=10**9).waited < 0.3


def test_a_wait_cancelled_in_the_queue_gives_back_its_slot_and_tokens() -> None:
    limits.set("queued", tpm=6000, concurrency=1)  # 100 tokens/s, a 1 s burst of 100
    limits.acquire("queued", tokens=100).release(used_tokens=100)  # the bucket is empty

    async def cancelled_while_queued() -> None:
        waiting = asyncio.create_task(limits.aacquire("queued", tokens=100))  # ~1 s to wait
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    run_in_new_loop(cancelled_while_queued())

    def must_not_wait(seconds: float) -> None:
        raise AssertionError(f"asked to wait {seconds} s: the cancelled wait kept its share")

    limits.acquire("queued", sleep=must_not_wait).release()  # the slot is free, no debt


def test_concurrency_cap_holds_at_the_server() -> None:
    with fake_llm(latency=0.2) as server:
        limits.set("capped:gpt-4o-mini", concurrency=2)
        client = AsyncOpenAI(base_url=server.base_url, api_key="unused", provider_name="capped")

        @af.workflow
        async def burst() -> int:
            await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": str(i)}]
                    )
                    for i in range(6)
                )
            )
            return 6

        handle = burst.start()
        assert handle.result(timeout=30) == 6
        log = served(server, 200)
    in_flight = max(sum(1 for o in log if o["ts"] <= r["ts"] < o["end"]) for r in log)
    assert len(log) == 6 and in_flight <= 2
    waited = [s.attributes.get("aiflow.llm.rate_limit_wait_s", 0) for s in handle.spans()]
    assert sum(1 for w in waited if w > 0.15) >= 3


@pytest.mark.slow
def test_three_processes_share_a_120_rpm_bucket_the_server_never_sees_exceeded() -> None:
    calls, rate, burst = 6, 2.0, 2  # 120 rpm = 2/s; the bucket holds 1 s of budget
    with fake_llm(rpm=120) as server:
        limits.set("shared:gpt-4o-mini", rpm=120)
        start = time.time() + 4
        procs = [
            python_subprocess(CALLER.format(url=server.base_url, start=start, calls=calls))
            for _ in range(3)
        ]
        # all reaped (their pipes closed) before any assert: one that failed would leave
        # the others' pipes to the garbage collector, an unclosed-file ResourceWarning in
        # whichever test runs then (test_llm_retries' first, on a cluster run)
        errs = [proc.communicate(timeout=60)[1] for proc in procs]
        for proc, err in zip(procs, errs, strict=True):
            assert proc.returncode == 0, err
        log = sorted(server.llm.requests, key=lambda r: r["ts"])
    assert len(log) == 3 * calls and all(r["status"] == 200 for r in log)
    times = [r["ts"] for r in log]
    for window in (1.0, 2.0, 5.0):
        # any window holds at most the burst plus what the rate refills (+1: arrival jitter)
        most = max(sum(1 for t in times if start <= t < start + window) for start in times)
        assert most <= burst + rate * window + 1, (window, most)
    # the burst queued (unlimited, all 18 arrive within a fraction of a second); slack for
    # a loaded machine, where a process's first request leaves late
    assert times[-1] - times[0] >= (len(times) - burst) / rate * 0.8
