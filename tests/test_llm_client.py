"""The real openai SDK, wrapped, against the local OpenAI-compatible server: spans with
gen_ai attributes, tokens and cost, streaming deltas, responses, embeddings, cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import aiflow_nb as af
from aiflow_nb.llm import AsyncOpenAI, FakeLLMServer, OpenAI, pricing, wrap

from support.llm import events_of, fake_llm, llm_spans, served
from support.ordering import ruff_order

MESSAGES = [{"role": "user", "content": "Explain durable LLM workflows"}]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with fake_llm() as s:
        yield s


def async_client(server: FakeLLMServer, **options: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="unused", provider_name="fake", **options)


def test_chat_call_in_a_run_is_a_span_with_gen_ai_attributes_tokens_and_cost(
    server: FakeLLMServer,
) -> None:
    client = async_client(server)

    @af.workflow
    async def ask_once(question: str) -> str:
        reply = await client.chat.completions.create(
            model="gpt-4o-mini",
            max_tokens=30,
            temperature=0.2,
            messages=[{"role": "user", "content": question}],
        )
        assert isinstance(reply, openai.types.chat.ChatCompletion)
        return reply.choices[0].message.content or ""

    handle = ask_once.start(question="Explain durable LLM workflows")
    text = handle.result(timeout=30)
    [span] = llm_spans(handle)
    [logged] = served(server)
    a = span.attributes
    assert span.name == "chat gpt-4o-mini" and span.status == "completed"
    assert span.output == text
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "fake"
    assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.max_tokens"] == 30 and a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.response.finish_reasons"] == ["length"]
    assert a["gen_ai.usage.input_tokens"] == logged["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == logged["output_tokens"] == 30
    assert a["aiflow.cost_usd"] == pytest.approx((logged["input_tokens"] * 0.15 + 30 * 0.60) / 1e6)
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == server.port


def test_streamed_deltas_reassemble_to_the_full_text(server: FakeLLMServer) -> None:
    client = async_client(server)

    @af.workflow
    async def stream_once() -> dict[str, Any]:
        plain = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        assert isinstance(stream, openai.AsyncStream)  # the SDK's own stream object
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return {"plain": plain.choices[0].message.content, "streamed": "".join(parts)}

    handle = stream_once.start()
    out = handle.result(timeout=30)
    streamed_span = [s for s in llm_spans(handle) if s.attributes.get("aiflow.llm.stream")][0]
    deltas = [e for e in events_of(handle, "output.delta") if e.span_id == streamed_span.span_id]
    assert len(deltas) > 10
    assert "".join(e.data["text"] for e in deltas) == out["streamed"] == out["plain"]
    assert streamed_span.text == out["streamed"] and streamed_span.output == out["streamed"]
    stream_log = [r for r in served(server) if r["stream"]][0]
    a = streamed_span.attributes
    assert a["gen_ai.usage.output_tokens"] == stream_log["output_tokens"]
    assert a["gen_ai.usage.input_tokens"] == stream_log["input_tokens"]
    assert "aiflow.llm.usage_estimated" not in a
    assert a["aiflow.cost_usd"] > 0 and a["aiflow.llm.time_to_first_token_s"] >= 0


def test_sync_client_traces_responses_streams_and_embeddings(server: FakeLLMServer) -> None:
    client = OpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")

    @af.workflow
    def sync_calls(text: str) -> dict[str, Any]:
        reply = client.responses.create(model="gpt-4o", input=text)
        stream = client.responses.create(model="gpt-4o", input=text, stream=True)
        assert isinstance(stream, openai.Stream)
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        vectors = client.embeddings.create(model="text-embedding-3-small", input=[text, "x"])
        return {
            "text": reply.output_text,
            "streamed": deltas,
            "dims": len(vectors.data[0].embedding),
        }

    handle = sync_calls.start(text="durable runs")
    out = handle.result(timeout=30)
    assert out["text"] == out["streamed"] and out["dims"] == 64
    spans = {
        s.name + (" stream" if s.attributes.get("aiflow.llm.stream") else ""): s
        for s in llm_spans(handle)
    }
    assert set(spans) == {
        "responses gpt-4o",
        "responses gpt-4o stream",
        "embeddings text-embedding-3-small",
    }
    assert spans["responses gpt-4o"].attributes["gen_ai.response.finish_reasons"] == ["completed"]
    assert spans["responses gpt-4o stream"].text == out["text"]
    assert (
        spans["responses gpt-4o stream"].attributes["gen_ai.usage.output_tokens"]
        == spans["responses gpt-4o"].attributes["gen_ai.usage.output_tokens"]
    )
    emb = spans["embeddings text-embedding-3-small"]
    assert emb.output == {"embeddings": 2, "dimensions": 64}
    assert emb.attributes["gen_ai.operation.name"] == "embeddings"
    assert emb.attributes["aiflow.cost_usd"] == pytest.approx(
        emb.attributes["gen_ai.usage.input_tokens"] * 0.02 / 1e6
    )


def test_outside_a_run_the_wrapper_calls_through_without_events(server: FakeLLMServer) -> None:
    client = wrap(openai.OpenAI(base_url=server.base_url, api_key="unused"))
    reply = client.chat.completions.create(model="m", messages=MESSAGES)
    assert reply.choices[0].message.content
    assert client.raw.max_retries == 0  # the SDK's own retries are off
    assert [m.id for m in client.models.list()][0] == "gpt-4o-mini"  # the SDK's surface


def test_cache_policy_answers_a_second_run_without_calling_the_provider(
    server: FakeLLMServer,
) -> None:
    client = async_client(server, cache=3600)

    @af.workflow
    async def cached_ask() -> str:
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return reply.choices[0].message.content or ""

    first = cached_ask.start()
    text = first.result(timeout=30)
    second = cached_ask.start()
    assert second.result(timeout=30) == text
    assert len(served(server)) == 1
    [span] = [s for s in second.spans() if s.name == "chat gpt-4o-mini"]
    assert span.cached and span.output == text


def test_price_table_is_extensible_and_unknown_models_have_no_cost(server: FakeLLMServer) -> None:
    pricing.set_price("house-model", input=1.0, output=2.0)
    client = async_client(server)

    @af.workflow
    async def two_models() -> None:
        await client.chat.completions.create(
            model="house-model-v2", messages=MESSAGES, max_tokens=10
        )
        await client.chat.completions.create(model="unpriced", messages=MESSAGES)

    handle = two_models.start()
    handle.result(timeout=30)
    priced, unpriced = llm_spans(handle)
    tokens_in = priced.attributes["gen_ai.usage.input_tokens"]
    assert priced.attributes["aiflow.cost_usd"] == pytest.approx((tokens_in * 1.0 + 20) / 1e6)
    assert "aiflow.cost_usd" not in unpriced.attributes
    with pytest.raises(ValueError, match="price input"):
        pricing.set_price("bad", input=-1)


def test_bad_request_fails_at_once_with_the_sdk_error(server: FakeLLMServer) -> None:
    client = async_client(server)

    @af.workflow
    async def bad() -> None:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[])

    handle = bad.start()
    with pytest.raises(af.RunFailed, match="BadRequestError"):
        handle.result(timeout=30)
    [span] = [s for s in handle.spans() if s.name == "chat gpt-4o-mini"]
    assert span.status == "failed" and span.attempts == 1
    assert len(served(server)) == 1


def test_wrong_arguments_are_clear_errors(server: FakeLLMServer) -> None:
    with pytest.raises(TypeError, match="openai.OpenAI"):
        wrap("not a client")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fallback"):
        OpenAI(base_url=server.base_url, api_key="x", fallbacks=[42])
    with pytest.raises(ValueError, match="AsyncOpenAI"):
        AsyncOpenAI(
            base_url=server.base_url,
            api_key="x",
            fallbacks=[openai.OpenAI(base_url=server.base_url, api_key="x")],
        )
    with pytest.raises(ValueError, match="error_rate"):
        server.llm.set(error_rate=1.5)
    with pytest.raises(ValueError, match="unknown knob"):
        server.llm.set(colour="red")
    assert asyncio.run(_raw_post(server)) == 422


async def _raw_post(server: FakeLLMServer) -> int:
    import httpx

    async with httpx.AsyncClient() as http:
        reply = await http.post(f"{server.url}/_aiflow/knobs", json={"latency": -1})
        return reply.status_code


def test_llm_and_limits_public_api_is_sorted_and_complete() -> None:
    import aiflow_nb.limits
    import aiflow_nb.llm

    for module in (aiflow_nb.llm, aiflow_nb.limits):
        assert module.__all__ == sorted(module.__all__, key=ruff_order)  # the tree's order
        assert all(hasattr(module, name) for name in module.__all__)
    assert {"LLMUnavailable", "set_attributes"} <= set(af.__all__)


def test_a_stream_closed_early_ends_its_span_and_frees_its_concurrency_slot(
    server: FakeLLMServer,
) -> None:
    from aiflow_nb import limits

    limits.set("fake:gpt-4o-mini", concurrency=1)
    client = OpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")

    @af.workflow
    def abandon() -> str:
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as stream:
            first = [next(stream).choices[0].delta.content for _ in range(3)]
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ).close()  # never iterated
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return "".join(p or "" for p in first) + "|" + (reply.choices[0].message.content or "")

    handle = abandon.start()
    head, full = handle.result(timeout=30).split("|")
    early, unread, whole = llm_spans(handle)
    assert early.status == unread.status == "completed"
    assert early.attributes["aiflow.llm.stream_closed_early"] is True
    assert early.text == early.output == head and full.startswith(head)
    assert unread.output == "" and unread.attributes["aiflow.llm.stream_closed_early"]
    assert whole.output == full  # the slot came back: concurrency=1 did not block it


def test_a_running_llm_span_already_shows_its_request_attributes(server: FakeLLMServer) -> None:
    server.llm.set(latency=0.5)
    client = async_client(server)

    @af.workflow
    async def slow() -> None:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    handle = slow.start()
    started = next(
        e for e in handle.events() if e.type == "span.started" and e.name == "chat gpt-4o-mini"
    )
    assert handle.status == "running"  # seen while the call is still waiting on the server
    assert started.data["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert started.data["attributes"]["gen_ai.provider.name"] == "fake"
    handle.result(timeout=30)
