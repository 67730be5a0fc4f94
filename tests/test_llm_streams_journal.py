"""Streamed LLM calls are journaled once consumed to their end: a resumed run gets the
recorded stream back (the real openai SDK against the local server, whose request log
shows no second request), its text again as ``output.delta`` events, the span replayed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

import aiflow_nb as af
from aiflow_nb.events.model import Event
from aiflow_nb.llm import AsyncOpenAI, FakeLLMServer, OpenAI
from aiflow_nb.trace.totals import RunTotals

from support.llm import events_of, fake_llm, llm_spans, served

MESSAGES = [{"role": "user", "content": "Explain durable LLM workflows"}]
USAGE_AND_COST = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "aiflow.cost_usd")


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with fake_llm() as s:
        yield s


def fails_the_first_time() -> af.Component[..., str]:
    """A step that raises on its first call (so the run fails and can be resumed)."""
    calls = {"n": 0}

    @af.component
    def flaky_step(text: str) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first time")
        return text.upper()

    return flaky_step


async def usage_stream(client: AsyncOpenAI) -> Any:
    """A streamed chat call whose last chunk carries the usage."""
    return await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )


def fail_then_resume(workflow: af.Workflow[..., Any]) -> tuple[af.RunHandle, Any]:
    handle = workflow.start()
    with pytest.raises(af.RunFailed):
        handle.result(timeout=30)
    return handle, af.resume(handle.run_id).result(timeout=30)


def after_resume(handle: af.RunHandle, span_id: str, type_: str) -> list[Event]:
    events = events_of(handle)
    resumed = next(i for i, e in enumerate(events) if e.type == "run.resumed")
    return [e for e in events[resumed:] if e.type == type_ and e.span_id == span_id]


def test_async_stream_is_replayed_on_resume_without_a_second_request(
    server: FakeLLMServer,
) -> None:
    client = AsyncOpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")
    step = fails_the_first_time()
    seen: list[list[str]] = []

    @af.workflow
    async def streamed_then_flaky() -> str:
        stream = await usage_stream(client)
        assert isinstance(stream, openai.AsyncStream)
        chunks = [c async for c in stream]
        assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
        seen.append([c.choices[0].delta.content or "" for c in chunks if c.choices])
        assert chunks[-1].usage is not None and not chunks[-1].choices
        return step("".join(seen[-1]))

    handle, out = fail_then_resume(streamed_then_flaky)
    first, again = seen
    assert len(served(server)) == 1  # the replay did not request the stream again
    assert again == first and out == "".join(first).upper()
    [span] = llm_spans(handle)
    assert span.replayed and span.status == "completed"
    assert span.output == span.text == "".join(first)  # not twice: the text starts anew
    deltas = after_resume(handle, span.span_id, "output.delta")
    assert [e.data["text"] for e in deltas] == [t for t in first if t]
    [replayed] = after_resume(handle, span.span_id, "span.replayed")
    assert replayed.id > deltas[-1].id  # the text first, then the span's end
    logged = served(server)[0]
    assert span.attributes["gen_ai.usage.output_tokens"] == logged["output_tokens"]
    assert all(name in replayed.data["attributes"] for name in USAGE_AND_COST)


def test_sync_chat_and_responses_streams_are_replayed_on_resume(server: FakeLLMServer) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")
    step = fails_the_first_time()
    seen: list[tuple[list[str], list[str], str | None]] = []

    @af.workflow
    def sync_streams() -> str:
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as stream:
            assert isinstance(stream, openai.Stream)
            chat = [c.choices[0].delta.content or "" for c in stream if c.choices]
        events = list(client.responses.create(model="gpt-4o", input="Say hi", stream=True))
        texts = [e.delta for e in events if e.type == "response.output_text.delta"]
        final = events[-1].response.output_text if events[-1].type == "response.completed" else None
        seen.append((chat, texts, final))
        return step("".join(chat) + "|" + "".join(texts))

    handle, out = fail_then_resume(sync_streams)
    first, again = seen
    assert len(served(server)) == 2  # one chat stream, one responses stream: once each
    assert again == first and first[2] == "".join(first[1])
    assert out == ("".join(first[0]) + "|" + "".join(first[1])).upper()
    spans = llm_spans(handle)
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "responses gpt-4o"]
    assert all(s.replayed and s.status == "completed" for s in spans)
    assert [s.text for s in spans] == ["".join(first[0]), "".join(first[1])]


def test_a_stream_abandoned_before_its_end_is_requested_again_on_resume(
    server: FakeLLMServer,
) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")
    step = fails_the_first_time()

    @af.workflow
    def abandons_a_stream() -> str:
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as stream:
            head = "".join(next(stream).choices[0].delta.content or "" for _ in range(3))
        return step(head)

    handle, out = fail_then_resume(abandons_a_stream)
    assert len(served(server)) == 2  # not journaled: the resumed run streamed it again
    [span] = llm_spans(handle)
    assert not span.replayed and out == span.text.upper()


def test_a_cached_stream_answers_another_run_with_its_recorded_chunks(
    server: FakeLLMServer,
) -> None:
    client = AsyncOpenAI(
        base_url=server.base_url, api_key="unused", provider_name="fake", cache=3600
    )

    @af.workflow
    async def cached_stream() -> list[str]:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async with stream:
            return [c.choices[0].delta.content or "" async for c in stream if c.choices]

    first = cached_stream.start()
    parts = first.result(timeout=30)
    second = cached_stream.start()
    assert second.result(timeout=30) == parts
    assert len(served(server)) == 1
    [span] = llm_spans(second)
    assert span.cached and span.output == span.text == "".join(parts)


def test_a_replayed_plain_call_shows_its_text_usage_and_cost(server: FakeLLMServer) -> None:
    client = AsyncOpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")
    step = fails_the_first_time()

    @af.workflow
    async def plain_then_flaky() -> str:
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return step(reply.choices[0].message.content or "")

    handle, out = fail_then_resume(plain_then_flaky)
    assert len(served(server)) == 1
    [span] = llm_spans(handle)
    [replayed] = after_resume(handle, span.span_id, "span.replayed")
    assert span.replayed and replayed.data["output"].upper() == out  # the text, not the document
    logged = served(server)[0]
    assert replayed.data["attributes"]["gen_ai.usage.input_tokens"] == logged["input_tokens"]
    assert all(name in replayed.data["attributes"] for name in USAGE_AND_COST)


def test_a_rerun_replays_a_finished_stream_without_requesting_it(server: FakeLLMServer) -> None:
    client = AsyncOpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")
    seen: list[list[str]] = []

    @af.workflow
    async def streamed_answer() -> str:
        stream = await usage_stream(client)
        async with stream:
            seen.append([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return "".join(seen[-1])

    first = streamed_answer.start()
    text = first.result(timeout=30)
    second = af.rerun(first)
    assert second.result(timeout=30) == text and seen[1] == seen[0]
    assert len(served(server)) == 1  # the rerun did not request the stream again
    [span] = llm_spans(second)
    assert span.replayed and span.replayed_from == first.run_id and span.text == text
    deltas = [e.data["text"] for e in events_of(second, "output.delta")]
    assert deltas == [t for t in seen[0] if t]
    logged = served(server)[0]
    totals = RunTotals()
    for e in events_of(second):
        totals.apply(e)
    saved = totals.savings()
    assert saved["llm_replayed"] == 1 and saved["llm_executed"] == 0
    assert saved["tokens_saved"] == logged["input_tokens"] + logged["output_tokens"]
