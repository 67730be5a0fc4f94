"""``OpenAI`` / ``AsyncOpenAI`` drop-ins and ``wrap(client)``: the ``openai`` SDK with
every ``chat.completions.create``, ``responses.create`` and ``embeddings.create`` traced.

Example::

    from aiflow_nb.llm import OpenAI

    client = OpenAI(fallbacks=["gpt-4o"], retry=dict(attempts=6), cache=3600)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])

Everything else (``client.models.list()``, ``client.files``, ...) is the SDK's own,
untraced. The SDK's retries are off; the wrapper retries (see ``retries``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import openai

from ..authoring.component import Component
from ..authoring.policies import CachePolicy, Policies, RetryPolicy
from .attributes import ENDPOINTS, Endpoint
from .call import LLMCall
from .execute import run_async, run_sync
from .retries import OUTAGE_STATUS, llm_retry_policy
from .targets import Target, no_sdk_retries, provider_of, to_targets

__all__ = ["AsyncOpenAI", "AsyncTracedOpenAI", "OpenAI", "TracedBase", "TracedOpenAI", "wrap"]


def _llm_request(request: dict[str, Any]) -> dict[str, Any]:
    """Stand-in function of an LLM call's component (the call itself is the SDK's)."""
    return request


def _cache_policy(cache: CachePolicy | float | bool | None) -> CachePolicy | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return CachePolicy()
    if isinstance(cache, CachePolicy):
        return cache
    if isinstance(cache, int | float):
        return CachePolicy(ttl=float(cache))
    raise ValueError(f"cache must be a ttl in seconds, True or a CachePolicy, got {cache!r}")


class TracedBase:
    """What the sync and async wrappers share: targets, policies, components per span name."""

    asynchronous = False
    resource: type[_Resource]
    """What ``chat.completions``, ``responses`` and ``embeddings`` are (sync or async)."""

    def __init__(
        self,
        client: openai.OpenAI | openai.AsyncOpenAI,
        *,
        provider_name: str | None = None,
        retry: RetryPolicy | int | dict[str, Any] | None = None,
        fallbacks: Iterable[Any] = (),
        fallback_on: Iterable[int] = OUTAGE_STATUS,
        cache: CachePolicy | float | bool | None = None,
        limits: bool = True,
    ) -> None:
        kind = openai.AsyncOpenAI if self.asynchronous else openai.OpenAI
        if not isinstance(client, kind):
            raise TypeError(
                f"{type(self).__name__} wraps an openai.{kind.__name__}, got {client!r}"
            )
        self.raw = no_sdk_retries(client)
        self.provider_name = provider_name or provider_of(self.raw)
        self.retry = llm_retry_policy(retry)
        self.fallback_specs = tuple(fallbacks)
        primary = Target(self.raw, self.provider_name)
        self.targets = to_targets(primary, self.fallback_specs, self.asynchronous)
        self.fallback_on = frozenset(fallback_on)
        self.cache = _cache_policy(cache)
        self.use_limits = bool(limits)
        self._components: dict[str, Component[Any, Any]] = {}
        self._lock = threading.Lock()
        self.chat = _Chat(self, self.resource(self, ENDPOINTS["chat.completions"]))
        self.responses = self.resource(self, ENDPOINTS["responses"])
        self.embeddings = self.resource(self, ENDPOINTS["embeddings"])

    def settings(self) -> dict[str, Any]:
        """The wrapper's own options (to wrap a copy of the client the same way)."""
        return {
            "provider_name": self.provider_name,
            "retry": self.retry,
            "fallbacks": self.fallback_specs,
            "fallback_on": self.fallback_on,
            "cache": self.cache,
            "limits": self.use_limits,
        }

    def component_for(self, name: str) -> Component[Any, Any]:
        """The component behind spans named ``name`` (it carries the cache policy)."""
        with self._lock:
            comp = self._components.get(name)
            if comp is None:
                policies = Policies(cache=self.cache)
                comp = Component(_llm_request, name=name, policies=policies)
                self._components[name] = comp
            return comp

    def __getattr__(self, name: str) -> Any:
        if name == "raw":  # not set yet: __init__ failed before it
            raise AttributeError(name)
        return getattr(self.raw, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider_name} {self.raw.base_url}>"


class _Resource:
    def __init__(self, owner: TracedBase, ep: Endpoint) -> None:
        self._owner = owner
        self._ep = ep

    def __getattr__(self, name: str) -> Any:
        obj: Any = self._owner.raw
        for part in self._ep.path.split("."):
            obj = getattr(obj, part)
        return getattr(obj, name)


class _SyncResource(_Resource):
    def create(self, **kwargs: Any) -> Any:
        """The SDK's ``create``, traced; returns what the SDK returns (a ``Stream`` too)."""
        return run_sync(LLMCall(self._owner, self._ep, kwargs))


class _AsyncResource(_Resource):
    async def create(self, **kwargs: Any) -> Any:
        """The SDK's ``create``, traced; returns what the SDK returns (an ``AsyncStream`` too)."""
        return await run_async(LLMCall(self._owner, self._ep, kwargs))


class _Chat:
    def __init__(self, owner: TracedBase, completions: _Resource) -> None:
        self._owner = owner
        self.completions = completions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.raw.chat, name)


class TracedOpenAI(TracedBase):
    """An ``openai.OpenAI`` whose calls are traced, retried, rate-limited and fall back."""

    resource = _SyncResource

    def with_options(self, **options: Any) -> TracedOpenAI:
        """The SDK's ``with_options`` (timeouts, headers, ...), wrapped the same way."""
        return TracedOpenAI(self.raw.with_options(**options), **self.settings())


class AsyncTracedOpenAI(TracedBase):
    """An ``openai.AsyncOpenAI`` whose calls are traced, retried, rate-limited and fall back."""

    asynchronous = True
    resource = _AsyncResource

    def with_options(self, **options: Any) -> AsyncTracedOpenAI:
        """The SDK's ``with_options``, wrapped the same way."""
        return AsyncTracedOpenAI(self.raw.with_options(**options), **self.settings())


_WRAPPER_OPTIONS = ("provider_name", "retry", "fallbacks", "fallback_on", "cache", "limits")


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ours = {k: kwargs.pop(k) for k in _WRAPPER_OPTIONS if k in kwargs}
    kwargs.setdefault("max_retries", 0)
    return ours, kwargs


class OpenAI(TracedOpenAI):
    """Drop-in for ``openai.OpenAI(...)``: same arguments, plus ``provider_name``, ``retry``,
    ``fallbacks``, ``fallback_on``, ``cache`` and ``limits``."""

    def __init__(self, **kwargs: Any) -> None:
        ours, sdk = _split(kwargs)
        super().__init__(openai.OpenAI(**sdk), **ours)


class AsyncOpenAI(AsyncTracedOpenAI):
    """Drop-in for ``openai.AsyncOpenAI(...)``, with the same extra options as ``OpenAI``."""

    def __init__(self, **kwargs: Any) -> None:
        ours, sdk = _split(kwargs)
        super().__init__(openai.AsyncOpenAI(**sdk), **ours)


def wrap(client: openai.OpenAI | openai.AsyncOpenAI, **settings: Any) -> TracedBase:
    """Trace an existing SDK client (sync or async); ``settings`` as for ``OpenAI``."""
    if isinstance(client, openai.AsyncOpenAI):
        return AsyncTracedOpenAI(client, **settings)
    if isinstance(client, openai.OpenAI):
        return TracedOpenAI(client, **settings)
    raise TypeError(f"wrap() takes an openai.OpenAI or openai.AsyncOpenAI, got {client!r}")
