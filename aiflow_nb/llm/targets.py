"""Where an LLM call can go: the primary client and its fallbacks, each a ``Target``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import openai

from .attributes import Endpoint

__all__ = ["RawClient", "Target", "no_sdk_retries", "provider_of", "to_targets"]

RawClient = openai.OpenAI | openai.AsyncOpenAI


def provider_of(raw: RawClient) -> str:
    """``openai`` for api.openai.com, else the base URL's ``host:port``."""
    url = raw.base_url
    if url.host == "api.openai.com":
        return "openai"
    return f"{url.host}:{url.port}" if url.port else str(url.host)


def no_sdk_retries(raw: RawClient) -> RawClient:
    """The client with the SDK's own retries off (the wrapper retries instead)."""
    return raw.with_options(max_retries=0) if raw.max_retries else raw


@dataclass(frozen=True)
class Target:
    """A client to send the call to, with the model to ask for (None: the requested one)."""

    raw: RawClient
    provider: str
    model: str | None = None

    def model_for(self, requested: str | None) -> str | None:
        return self.model or requested

    def label(self, requested: str | None) -> str:
        return f"{self.provider}:{self.model_for(requested)}"

    def limit_names(self, requested: str | None) -> tuple[str, ...]:
        """The shared rate limits this call counts against."""
        return (self.label(requested), self.provider)

    @property
    def base_url(self) -> str:
        return str(self.raw.base_url)

    def method(self, ep: Endpoint) -> Any:
        obj: Any = self.raw
        for part in ep.path.split("."):
            obj = getattr(obj, part)
        return obj.create


def _target_of(spec: Any, primary: Target, asynchronous: bool) -> Target:
    kind = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    if isinstance(spec, str):
        return Target(primary.raw, primary.provider, spec)
    client, model = spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, None)
    provider = getattr(client, "provider_name", None)
    raw = getattr(client, "raw", client)
    if not isinstance(raw, kind):
        want = "AsyncOpenAI" if asynchronous else "OpenAI"
        raise ValueError(
            f"fallback {spec!r}: expected a model name, an {want} client or ({want}, model)"
        )
    if model is not None and not isinstance(model, str):
        raise ValueError(f"fallback {spec!r}: the model must be a string")
    return Target(no_sdk_retries(raw), provider or provider_of(raw), model)


def to_targets(primary: Target, fallbacks: Iterable[Any], asynchronous: bool) -> tuple[Target, ...]:
    """The primary followed by each fallback (a model name, a client, or (client, model))."""
    return (primary, *(_target_of(f, primary, asynchronous) for f in fallbacks))
