"""LLM-layer benchmarks (issue 7), against the local LLM server and the fixture site each
in a process of their own (the provider and the site are remote in real life).

1. The onboarding-ingestion demo making 500 LLM calls (1 page pick + 499 summaries) at
   0.2 s latency under a shared 6,000 rpm limit (100 calls/s, a 1 s burst of 100). The
   baseline is the ideal that bucket allows: the pick (0.2 s), then 499 calls of which
   100 leave at once and the rest at 100/s, the last ending 0.2 s after it leaves.
   Target: wall <= 1.2x that ideal. Also the busiest second in the server's request log,
   against what the limit allows (burst + one second of refill).
2. Per-call overhead of the wrapper in a run (span, attributes, journal, limiter) vs the
   raw SDK: 200 sequential chat calls at zero latency. Reported, no target.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ._common import Figure, private_redis

CALLS = 500
LATENCY = 0.2
RPM = 6000
SEQUENTIAL = 200


def _ingestion(site_pages: int) -> tuple[float, int]:
    from aiflow_nb import limits
    from aiflow_nb.examples.ingestion import onboard_site

    limits.set("fake-llm:gpt-4o-mini", rpm=RPM)
    with _site_process(site_pages) as site_url:
        t0 = time.perf_counter()
        result = onboard_site.start(site_url=site_url, max_pages=CALLS - 1).result(timeout=120)
        wall = time.perf_counter() - t0
    return wall, int(result["pages"]) + 1


def _ideal(calls: int) -> float:
    rate, burst = RPM / 60, RPM / 60
    fanout = calls - 1
    return LATENCY + max(0.0, fanout - burst) / rate + LATENCY


def _overhead(base_url: str) -> tuple[float, float]:
    import openai

    from aiflow_nb import workflow
    from aiflow_nb.llm import AsyncOpenAI

    raw = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    traced = AsyncOpenAI(base_url=base_url, api_key="unused", provider_name="bench")
    ask = [{"role": "user", "content": "hello"}]

    async def raw_calls() -> None:
        for _ in range(SEQUENTIAL):
            await raw.chat.completions.create(model="m", messages=ask, max_tokens=5)

    @workflow
    async def traced_calls() -> int:
        for _ in range(SEQUENTIAL):
            await traced.chat.completions.create(model="m", messages=ask, max_tokens=5)
        return SEQUENTIAL

    t0 = time.perf_counter()
    asyncio.run(raw_calls())
    raw_s = (time.perf_counter() - t0) / SEQUENTIAL
    t0 = time.perf_counter()
    traced_calls.start().result(timeout=120)
    traced_s = (time.perf_counter() - t0) / SEQUENTIAL
    return traced_s, raw_s


@contextmanager
def _served(command: list[str], probe: str) -> Iterator[None]:
    """``command`` running until the block ends, once ``probe`` answers."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(probe)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{command[:3]} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def _fake_llm_process(latency: float) -> Iterator[str]:
    from aiflow_nb.api.server import free_port

    port = free_port()
    aiflow = str(Path(sys.executable).parent / "aiflow")
    base = f"http://127.0.0.1:{port}"
    with _served(
        [aiflow, "fake-llm", "--port", str(port), "--latency", str(latency), "--tokens-per-s", "0"],
        f"{base}/_aiflow/knobs",
    ):
        yield base


@contextmanager
def _site_process(pages: int) -> Iterator[str]:
    from aiflow_nb.api.server import free_port

    port = free_port()
    code = (
        "import uvicorn; from aiflow_nb.examples.site import create_site; "
        f"uvicorn.run(create_site({pages}), host='127.0.0.1', port={port}, "
        "log_level='warning')"
    )
    url = f"http://127.0.0.1:{port}/"
    with _served([sys.executable, "-c", code], url):
        yield url


def main() -> list[Figure]:
    from aiflow_nb.examples.llm import use_fake_llm

    os.environ.pop("OPENAI_API_KEY", None)
    figures = []
    with private_redis(), _fake_llm_process(LATENCY) as base:
        use_fake_llm(f"{base}/v1")
        wall, calls = _ingestion(site_pages=700)
        ideal = _ideal(calls)
        figures.append(
            Figure(
                f"ingestion: {calls} LLM calls, 0.2 s, {RPM} rpm",
                wall,
                "s",
                baseline=ideal,
                baseline_name="ideal under the limit",
                target="<= 1.2x",
                met=wall <= 1.2 * ideal,
            )
        )
        times = sorted(r["ts"] for r in httpx.get(f"{base}/_aiflow/requests").json())
        peak = max(sum(1 for t in times if start <= t < start + 1) for start in times)
        allowed = RPM / 60 * 2  # a full bucket (1 s of budget) plus 1 s of refill
        figures.append(
            Figure(
                "peak LLM requests in any 1 s (server log)",
                peak,
                "req",
                baseline=allowed,
                baseline_name="what the limit allows",
                target="<= 1.0x",
                met=peak <= allowed,
            )
        )
        httpx.post(f"{base}/_aiflow/knobs", json={"latency": 0.0})
        traced_s, raw_s = _overhead(f"{base}/v1")
        figures.append(
            Figure(
                "chat call in a run (wrapper)",
                traced_s * 1e3,
                "ms",
                baseline=raw_s * 1e3,
                baseline_name="raw openai SDK call",
            )
        )
    return figures
