"""Retries of LLM calls against the local server: a 429 storm with Retry-After (waits
honoured through an injected sleep), 5xx with backoff, and the general Retry-After hook."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import openai
import pytest
import tenacity

import aiflow_nb as af
from aiflow_nb import defaults
from aiflow_nb.authoring.policies import RetryPolicy
from aiflow_nb.llm import AsyncOpenAI, OpenAI, retry_after

from support.llm import Waits, events_of, fake_llm, llm_spans, served


def test_429_storm_completes_and_honours_every_retry_after() -> None:
    waits = Waits()
    with fake_llm(rate_limit_rate=0.3, retry_after=2.0, seed=3) as server:
        client = AsyncOpenAI(
            base_url=server.base_url, api_key="unused", retry=dict(attempts=12, sleep=waits)
        )

        @af.component
        async def answer(n: int) -> str:
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {n}"}]
            )
            return reply.choices[0].message.content or ""

        @af.workflow
        async def storm(n: int) -> list[str]:
            return list(await asyncio.gather(*(answer(i) for i in range(n))))

        handle = storm.start(n=30)
        answers = handle.result(timeout=60)
        limited = served(server, 429)
    assert len(answers) == 30 and all(answers)
    assert 0.15 < len(limited) / len(server.llm.requests) < 0.45  # the storm happened
    assert waits.waits == [2.0] * len(limited)  # each 429's Retry-After, no less, no more
    retrying = events_of(handle, "span.retrying")
    assert len(retrying) == len(limited)
    assert all(e.data["error"]["status"] == 429 and e.data["wait"] == 2.0 for e in retrying)
    spans = llm_spans(handle)
    assert sum(s.attributes["aiflow.llm.attempts"] for s in spans) == len(server.llm.requests)
    retried = [s for s in spans if s.attributes["aiflow.llm.attempts"] > 1]
    assert retried and all(
        len(s.retries) == s.attributes["aiflow.llm.attempts"] - 1 for s in retried
    )
    assert all(t["status"] == 429 for s in retried for t in s.attributes["aiflow.llm.tries"])


def test_5xx_without_retry_after_backs_off_exponentially() -> None:
    waits = Waits()
    with fake_llm(error_rate=1.0, error_status=502) as server:
        client = AsyncOpenAI(
            base_url=server.base_url,
            api_key="unused",
            retry=dict(attempts=4, initial=0.25, sleep=waits),
        )

        @af.workflow
        async def doomed() -> None:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )

        handle = doomed.start()
        with pytest.raises(af.RunFailed, match="LLMUnavailable") as info:
            handle.result(timeout=30)
    assert waits.waits == [0.25, 0.5, 1.0]
    assert len(server.llm.requests) == 4
    assert "after 4 attempt(s)" in info.value.error["message"]


def test_sync_client_retries_outside_a_run_with_the_sdk_retries_off() -> None:
    waits = Waits()
    with fake_llm(rate_limit_rate=1.0, retry_after=0.75) as server:
        client = OpenAI(
            base_url=server.base_url, api_key="unused", retry=RetryPolicy(attempts=3, sleep=waits)
        )
        with pytest.raises(af.LLMUnavailable) as info:
            client.embeddings.create(model="text-embedding-3-small", input="x")
    assert isinstance(info.value.__cause__, openai.RateLimitError)
    assert waits.waits == [0.75, 0.75]
    assert len(server.llm.requests) == 3  # 3 attempts, not 3 x the SDK's own retries


def test_retry_after_reads_ms_seconds_and_http_dates() -> None:
    def error(headers: dict[str, str]) -> openai.APIStatusError:
        request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
        response = httpx.Response(429, headers=headers, request=request)
        return openai.RateLimitError("slow down", response=response, body=None)

    assert retry_after(error({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after(error({"retry-after": "3"})) == 3.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after(error({"retry-after": date})) or 0) <= 31
    assert retry_after(error({})) is None
    assert retry_after(ValueError("no response")) is None


def test_retry_policy_retry_after_hook_replaces_the_backoff_and_is_capped() -> None:
    class Busy(Exception):
        def __init__(self, wait: float | None) -> None:
            self.wait = wait

    policy = RetryPolicy(attempts=4, initial=0.1, retry_after=lambda e: getattr(e, "wait", None))
    waits: list[float] = []
    errors = iter([Busy(3.0), Busy(None), Busy(10_000.0)])

    def flaky() -> str:
        err = next(errors, None)
        if err is not None:
            raise err
        return "ok"

    retrying = tenacity.Retrying(sleep=waits.append, **policy.tenacity_kwargs(lambda s: None))
    assert retrying(flaky) == "ok"
    assert waits == [3.0, 0.2, defaults.RETRY_AFTER_MAX]
    with pytest.raises(ValueError, match="retry_after"):
        RetryPolicy(retry_after=5)  # type: ignore[arg-type]
