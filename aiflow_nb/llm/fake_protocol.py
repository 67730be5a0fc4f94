"""The OpenAI wire format the local LLM server speaks: response bodies and SSE streams."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi.responses import StreamingResponse

from .fake_text import Completion, count_tokens, embed, prompt_text

__all__ = [
    "DEFAULT_DIMENSIONS",
    "chat_body",
    "embeddings_body",
    "responses_body",
    "sse_chat",
    "sse_responses",
]

DEFAULT_DIMENSIONS = 64


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def chat_body(model: str, answer: Completion, usage: tuple[int, int]) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "id": _id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fake-llm",
        "choices": [
            {
                "index": 0,
                "finish_reason": answer.finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": answer.text},
            }
        ],
        "usage": _chat_usage(usage),
    }


def _chat_usage(usage: tuple[int, int]) -> dict[str, int]:
    return {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[0] + usage[1],
    }


def _message(answer: Completion) -> dict[str, Any]:
    return {
        "type": "message",
        "id": _id("msg"),
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": answer.text, "annotations": []}],
    }


def responses_body(
    model: str, answer: Completion | None, usage: tuple[int, int], status: str = "completed"
) -> dict[str, Any]:
    """A ``response`` object (``answer`` None: still in progress, no output yet)."""
    return {
        "id": _id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "output": [_message(answer)] if answer else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "incomplete_details": None
        if not answer or answer.finish_reason == "stop"
        else {"reason": "max_output_tokens"},
        "usage": {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        if answer
        else None,
    }


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    """An embeddings ``list`` for ``body['input']`` (a string or a list of them)."""
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    dims = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
    texts = [prompt_text(i) if not isinstance(i, int) else str(i) for i in inputs]
    data = [
        {"object": "embedding", "index": n, "embedding": embed(t, dims)}
        for n, t in enumerate(texts)
    ]
    tokens = sum(count_tokens(t) for t in texts)
    return {
        "object": "list",
        "model": body.get("model"),
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _sse(doc: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(doc) + b"\n\n"


async def _paced(tokens: list[str], tokens_per_s: float) -> AsyncIterator[str]:
    for n, token in enumerate(tokens):
        if n and tokens_per_s > 0:
            await asyncio.sleep(1 / tokens_per_s)
        yield token


def sse_chat(
    model: str, answer: Completion, usage: tuple[int, int], include_usage: bool, tokens_per_s: float
) -> StreamingResponse:
    """``chat.completion.chunk`` events, one per token, then ``[DONE]``."""
    cid, created = _id("chatcmpl"), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fake-llm",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    async def events() -> AsyncIterator[bytes]:
        yield _sse(chunk({"role": "assistant", "content": ""}))
        async for token in _paced(answer.tokens, tokens_per_s):
            yield _sse(chunk({"content": token}))
        yield _sse(chunk({}, answer.finish_reason))
        if include_usage:
            yield _sse({**chunk({}), "choices": [], "usage": _chat_usage(usage)})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def sse_responses(
    model: str, answer: Completion, usage: tuple[int, int], tokens_per_s: float
) -> StreamingResponse:
    """Responses API events: created, one ``output_text.delta`` per token, completed."""

    async def events() -> AsyncIterator[bytes]:
        seq = 0
        start = responses_body(model, None, usage, status="in_progress")
        yield _sse(
            {"type": "response.created", "sequence_number": seq, "response": start},
            "response.created",
        )
        item = _id("msg")
        async for token in _paced(answer.tokens, tokens_per_s):
            seq += 1
            yield _sse(
                {
                    "type": "response.output_text.delta",
                    "sequence_number": seq,
                    "item_id": item,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": token,
                    "logprobs": [],
                },
                "response.output_text.delta",
            )
        done = {**responses_body(model, answer, usage), "id": start["id"]}
        yield _sse(
            {"type": "response.completed", "sequence_number": seq + 1, "response": done},
            "response.completed",
        )

    return StreamingResponse(events(), media_type="text/event-stream")
