"""Recorded streams: what the journal keeps of a streamed LLM call that ran to its end,
and the SDK stream a replay returns in its place (no request made).

A record is ``{"stream": endpoint path, "head": chunk fields, "parts": text deltas,
"finish_reason", "usage", "response" (Responses API: the final response)}``; the
journal document around it keeps the span's attributes (``a``: tokens, cost).
Replayed, it yields one chunk (chat) or one ``response.output_text.delta`` event
(Responses) per recorded text delta, between the frames the SDK gives around them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from openai._models import construct_type
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from .attributes import Endpoint, StreamState

__all__ = [
    "AsyncReplayedStream",
    "ReplayedStream",
    "chunks_of",
    "is_record",
    "record_of",
    "shown_text",
]


def record_of(ep: Endpoint, body: dict[str, Any], state: StreamState) -> dict[str, Any] | None:
    """The journal record of a stream consumed to its end; None when a replay could not
    give back what it delivered (more than one choice, logprobs, tool calls, refusals,
    non-text output): such a stream runs again on resume."""
    if state.other or (body.get("n") or 1) != 1 or body.get("logprobs"):
        return None
    if ep.path == "responses" and state.final is None:
        return None
    return {
        "stream": ep.path,
        "head": state.head,
        "parts": list(state.parts),
        "finish_reason": state.finish_reasons[0] if state.finish_reasons else None,
        "usage": state.usage_doc,
        "response": state.final,
    }


def is_record(value: Any) -> bool:
    return isinstance(value, dict) and "stream" in value and "parts" in value


def shown_text(value: Any) -> Any:
    """What a streamed span shows as output: the text (a record's, or as given)."""
    return "".join(value["parts"]) if is_record(value) else value


def _chat_chunks(record: dict[str, Any]) -> list[Any]:
    head = {**record["head"], "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Any:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return ChatCompletionChunk.model_validate({**head, "choices": [choice]})

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": part}) for part in record["parts"]]
    chunks.append(chunk({}, record["finish_reason"]))
    if record["usage"] is not None:
        doc = {**head, "choices": [], "usage": record["usage"]}
        chunks.append(ChatCompletionChunk.model_validate(doc))
    return chunks


def _event(doc: dict[str, Any]) -> Any:
    return construct_type(type_=ResponseStreamEvent, value=doc)


def _response_events(record: dict[str, Any]) -> list[Any]:
    final = record["response"]
    items = [i for i in final.get("output") or [] if i.get("type") == "message"]
    item_id = items[0].get("id", "") if items else ""
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    events = [_event({"type": "response.created", "response": started, "sequence_number": 0})]
    for n, part in enumerate(record["parts"], start=1):
        delta: dict[str, Any] = {
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "logprobs": [],
        }
        doc = {"type": "response.output_text.delta", "delta": part, "sequence_number": n}
        events.append(_event({**doc, **delta}))
    last = len(events)
    events.append(
        _event({"type": "response.completed", "response": final, "sequence_number": last})
    )
    return events


def chunks_of(record: dict[str, Any]) -> list[Any]:
    """The SDK objects a replay of ``record`` yields, in order."""
    return _response_events(record) if record["stream"] == "responses" else _chat_chunks(record)


class ReplayedStream(openai.Stream[Any]):
    """An ``openai.Stream`` of recorded chunks: iteration, ``with`` and ``close()`` as the
    SDK's; there is no HTTP response behind it."""

    def __init__(self, items: list[Any]) -> None:  # no super().__init__: nothing to read
        self._iterator: Iterator[Any] = iter(items)

    def close(self) -> None:
        self._iterator = iter(())


class AsyncReplayedStream(openai.AsyncStream[Any]):
    """An ``openai.AsyncStream`` of recorded chunks (see ``ReplayedStream``)."""

    def __init__(self, items: list[Any]) -> None:  # no super().__init__: nothing to read
        self._closed = False
        self._iterator = self._each(items)

    async def _each(self, items: list[Any]) -> AsyncIterator[Any]:
        for item in items:
            if self._closed:
                return
            yield item

    async def close(self) -> None:
        self._closed = True
