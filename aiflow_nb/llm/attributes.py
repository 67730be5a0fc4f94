"""What an LLM span records: OpenTelemetry ``gen_ai.*`` attributes, usage, cost, text.

Responses are read as their JSON documents (``model_dump(mode="json")``), so the same
code serves fresh, cached and replayed results.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import openai.types as otypes
import openai.types.chat as ochat
import openai.types.responses as oresponses

from .. import defaults
from ..serialization import dumps
from . import pricing

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "StreamState",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "request_attributes",
    "response_attributes",
    "shown_output",
    "text_of",
    "usage_of",
]


@dataclass(frozen=True)
class Endpoint:
    """One SDK method the wrapper traces."""

    path: str
    operation: str
    """``gen_ai.operation.name``."""
    label: str
    """First word of the span name (``"chat gpt-4o-mini"``)."""
    response_type: type[Any]


ENDPOINTS = {
    "chat.completions": Endpoint("chat.completions", "chat", "chat", ochat.ChatCompletion),
    "responses": Endpoint("responses", "chat", "responses", oresponses.Response),
    "embeddings": Endpoint(
        "embeddings", "embeddings", "embeddings", otypes.CreateEmbeddingResponse
    ),
}

_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
}


def request_attributes(
    ep: Endpoint, body: dict[str, Any], provider: str, base_url: str
) -> dict[str, Any]:
    parts = urlsplit(base_url)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": ep.operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": body.get("model"),
        "server.address": parts.hostname,
        "server.port": parts.port,
        "aiflow.llm.endpoint": ep.path,
    }
    attrs.update({name: body[p] for p, name in _REQUEST_PARAMS.items() if p in body})
    if body.get("stream"):
        attrs["aiflow.llm.stream"] = True
    return attrs


def usage_of(ep: Endpoint, doc: dict[str, Any]) -> tuple[int, int] | None:
    """(input tokens, output tokens) of a response document, or None without usage."""
    usage = doc.get("usage")
    if not usage:
        return None
    if ep.path == "responses":
        return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _finish_reasons(ep: Endpoint, doc: dict[str, Any]) -> list[str]:
    if ep.path == "chat.completions":
        return [c.get("finish_reason") for c in doc.get("choices") or [] if c.get("finish_reason")]
    if ep.path == "responses":
        incomplete = doc.get("incomplete_details") or {}
        return [incomplete.get("reason") or doc.get("status") or "completed"]
    return []


def response_attributes(
    ep: Endpoint,
    doc: dict[str, Any],
    request_model: str | None,
    usage: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """``gen_ai.response.*``, ``gen_ai.usage.*`` and ``aiflow.cost_usd`` of a response."""
    usage = usage or usage_of(ep, doc) or (0, 0)
    model = doc.get("model") or request_model
    attrs: dict[str, Any] = {
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": usage[0],
        "gen_ai.usage.output_tokens": usage[1],
    }
    if doc.get("id"):
        attrs["gen_ai.response.id"] = doc["id"]
    reasons = _finish_reasons(ep, doc)
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    price = pricing.cost(model, *usage)
    if price is None and model != request_model:
        price = pricing.cost(request_model, *usage)
    if price is not None:
        attrs["aiflow.cost_usd"] = price
    return attrs


def text_of(ep: Endpoint, doc: dict[str, Any]) -> str:
    """The generated text of a response document ("" for embeddings)."""
    if ep.path == "chat.completions":
        choices = doc.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")
    if ep.path == "responses":
        return "".join(
            part.get("text") or ""
            for item in doc.get("output") or []
            if item.get("type") == "message"
            for part in item.get("content") or []
            if part.get("type") == "output_text"
        )
    return ""


def shown_output(ep: Endpoint, doc: dict[str, Any]) -> Any:
    """What the span's ``span.completed`` shows: the text, or the shape of embeddings."""
    if ep.path == "embeddings":
        data = doc.get("data") or []
        dims = len(data[0].get("embedding") or []) if data else 0
        return {"embeddings": len(data), "dimensions": dims}
    return text_of(ep, doc)


def estimate_prompt_tokens(ep: Endpoint, body: dict[str, Any]) -> int:
    """Tokens of the request's prompt, estimated at about 4 characters each."""
    source = body.get("input") if ep.path != "chat.completions" else body.get("messages")
    return math.ceil(len(dumps(source)) / 4) if source is not None else 0


def estimate_tokens(ep: Endpoint, body: dict[str, Any]) -> int:
    """Tokens to reserve in a tokens-per-minute bucket before the call: the prompt's and
    the most the answer may take."""
    prompt = estimate_prompt_tokens(ep, body)
    if ep.path == "embeddings":
        return prompt
    out = (
        body.get("max_completion_tokens")
        or body.get("max_tokens")
        or body.get("max_output_tokens")
        or defaults.LLM_OUTPUT_TOKENS_ESTIMATE
    )
    return prompt + int(out)


def _beyond_text(choice: Any) -> bool:
    """A chat chunk's choice carries more than text (or not for choice 0)."""
    delta = choice.delta
    extra = delta and (delta.tool_calls or delta.function_call or delta.refusal)
    return bool(choice.index != 0 or extra or choice.logprobs)


@dataclass
class StreamState:
    """What a stream has delivered so far."""

    ep: Endpoint
    parts: list[str] = field(default_factory=list)
    chunks: int = 0
    finish_reasons: list[str] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    model: str | None = None
    response_id: str | None = None
    first_token: float | None = None
    t0: float = field(default_factory=time.perf_counter)
    ended: bool = False
    head: dict[str, Any] = field(default_factory=dict)
    """The first chunk's fields but its choices and usage (id, model, created...)."""
    usage_doc: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    """Responses API: the response of its ``response.completed`` event."""
    other: bool = False
    """Something besides text came (tool calls, a refusal, logprobs, non-text output)."""

    def feed(self, chunk: Any) -> str:
        """Take one chunk/event; return its text delta ("" when it carries none)."""
        self.chunks += 1
        if self.ep.path == "responses":
            return self._feed_event(chunk)
        self.model = getattr(chunk, "model", None) or self.model
        self.response_id = getattr(chunk, "id", None) or self.response_id
        if not self.head and hasattr(chunk, "model_dump"):
            self.head = chunk.model_dump(mode="json", exclude={"choices", "usage", "object"})
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = (usage.prompt_tokens or 0, usage.completion_tokens or 0)
            self.usage_doc = usage.model_dump(mode="json")
        text = ""
        for choice in getattr(chunk, "choices", None) or []:
            if choice.finish_reason:
                self.finish_reasons.append(choice.finish_reason)
            self.other = self.other or _beyond_text(choice)
            if choice.index == 0 and choice.delta and choice.delta.content:
                text = choice.delta.content
        return self._text(text)

    def _feed_event(self, event: Any) -> str:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            return self._text(getattr(event, "delta", "") or "")
        response = getattr(event, "response", None)
        if response is not None:
            self.model = getattr(response, "model", None) or self.model
            self.response_id = getattr(response, "id", None) or self.response_id
            usage = getattr(response, "usage", None)
            if usage is not None:
                self.usage = (usage.input_tokens or 0, usage.output_tokens or 0)
            if kind in ("response.completed", "response.incomplete"):
                details = getattr(response, "incomplete_details", None)
                self.finish_reasons = [getattr(details, "reason", None) or response.status]
                self.final = response.model_dump(mode="json")
                self.other = self.other or any(
                    item.get("type") != "message" for item in self.final.get("output") or []
                )
        return ""

    def _text(self, text: str) -> str:
        if text:
            if self.first_token is None:
                self.first_token = time.perf_counter() - self.t0
            self.parts.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def document(self) -> dict[str, Any]:
        """A response-like document for ``response_attributes``."""
        return (
            {
                "model": self.model,
                "id": self.response_id,
                "choices": [{"finish_reason": r} for r in self.finish_reasons],
            }
            if self.ep.path != "responses"
            else {
                "model": self.model,
                "id": self.response_id,
                "status": (self.finish_reasons or ["completed"])[0],
            }
        )
