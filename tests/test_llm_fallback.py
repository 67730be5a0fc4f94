"""Fallbacks and outages against two real local LLM servers: a 503 moves the call to the
fallback at once; exhausted retries move it to a fallback model; when every provider is
down the step fails clearly, the run ends failed with nothing lost, and resume finishes
it without calling the finished step's LLM again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

import aiflow_nb as af
from aiflow_nb import keys
from aiflow_nb.llm import AsyncOpenAI, FakeLLMServer
from aiflow_nb.store import sync_redis

from support.llm import Waits, events_of, fake_llm, llm_spans, served

ASK = [{"role": "user", "content": "What survives an outage?"}]


@pytest.fixture
def servers() -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    with fake_llm() as primary, fake_llm() as backup:
        yield primary, backup


def test_primary_503_completes_on_the_fallback_recorded_in_the_span(
    servers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    primary, backup = servers
    primary.llm.set(outage=503)
    backup_client = openai.AsyncOpenAI(base_url=backup.base_url, api_key="unused")
    client = AsyncOpenAI(
        base_url=primary.base_url, api_key="unused", provider_name="main", fallbacks=[backup_client]
    )

    @af.workflow
    async def ask() -> str:
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        return reply.choices[0].message.content or ""

    handle = ask.start()
    assert handle.result(timeout=30)
    assert [r["status"] for r in primary.llm.requests] == [503]  # no retry: outage code
    assert [r["status"] for r in backup.llm.requests] == [200]
    [span] = llm_spans(handle)
    backup_provider = f"127.0.0.1:{backup.port}"
    assert span.status == "completed" and span.attempts == 2
    assert span.attributes["aiflow.llm.fallback"] == {
        "index": 1,
        "target": f"{backup_provider}:gpt-4o-mini",
        "from": "main:gpt-4o-mini",
    }
    assert span.attributes["gen_ai.provider.name"] == backup_provider
    [moved] = events_of(handle, "span.retrying")
    assert moved.data["error"]["status"] == 503
    assert moved.data["fallback"] == f"{backup_provider}:gpt-4o-mini"


def test_exhausted_retries_fall_back_to_another_model(
    servers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    primary, _ = servers
    primary.llm.set(outage=500, outage_models=("big-model",))
    waits = Waits()
    client = AsyncOpenAI(
        base_url=primary.base_url,
        api_key="unused",
        retry=dict(attempts=3, initial=0.1, sleep=waits),
        fallbacks=["small-model"],
    )

    @af.workflow
    async def ask_big() -> str:
        reply = await client.chat.completions.create(model="big-model", messages=ASK)
        return reply.model

    handle = ask_big.start()
    assert handle.result(timeout=30) == "small-model"
    assert [(r["model"], r["status"]) for r in primary.llm.requests] == [("big-model", 500)] * 3 + [
        ("small-model", 200)
    ]
    assert waits.waits == [0.1, 0.2]
    [span] = llm_spans(handle)
    assert span.attributes["gen_ai.request.model"] == "big-model"
    assert span.attributes["gen_ai.response.model"] == "small-model"
    assert span.attributes["aiflow.llm.attempts"] == 4
    assert len(span.attributes["aiflow.llm.tries"]) == 3


def test_outage_fails_the_run_clearly_and_resume_finishes_it_without_recalling(
    servers: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    primary, backup = servers
    for server in servers:
        server.llm.set(outage=503, outage_models=("writer-model",))
    waits = Waits()
    client = AsyncOpenAI(
        base_url=primary.base_url,
        api_key="unused",
        retry=dict(attempts=3, sleep=waits),
        fallbacks=[openai.AsyncOpenAI(base_url=backup.base_url, api_key="unused")],
    )

    @af.component
    async def research(topic: str) -> str:
        reply = await client.chat.completions.create(
            model="research-model", messages=[{"role": "user", "content": topic}]
        )
        return reply.choices[0].message.content or ""

    @af.component
    async def write(notes: str) -> str:
        reply = await client.chat.completions.create(
            model="writer-model", messages=[{"role": "user", "content": notes}]
        )
        return reply.choices[0].message.content or ""

    @af.workflow
    async def post(topic: str) -> str:
        return await write(await research(topic))

    handle = post.start(topic="outages")
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    assert handle.status == "failed"
    message = info.value.error["message"]
    assert "LLMUnavailable" in message and "failed on every provider" in message
    assert "503" in message
    writer_calls = [r for s in servers for r in s.llm.requests if r["model"] == "writer-model"]
    # primary: 1 attempt (503 moves on at once), backup (the last target): 3 attempts
    assert len(writer_calls) == 4 and len(waits.waits) == 2
    before = [(e.id, e.type, e.name) for e in handle.events(follow=False)]
    assert ("span.completed", "research") in [(t, n) for _, t, n in before]

    for server in servers:
        server.llm.set(outage=None)
    _wait_for_lease_release(handle.run_id)
    handle.resume()
    text = handle.result(timeout=30)
    assert text
    after = [(e.id, e.type, e.name) for e in handle.events(follow=False)]
    assert after[: len(before)] == before  # nothing lost
    research_calls = [r for s in servers for r in s.llm.requests if r["model"] == "research-model"]
    assert len(research_calls) == 1  # the finished step was not called again
    assert [e.name for e in events_of(handle, "span.replayed")] == ["research"]
    assert served(primary, 200)[-1]["model"] == "writer-model"


def _wait_for_lease_release(run_id: str) -> None:
    """The worker drops its lease just after the run's terminal record is written."""
    deadline = time.monotonic() + 5
    while sync_redis().exists(keys.run_lease(run_id)) and time.monotonic() < deadline:
        time.sleep(0.01)
