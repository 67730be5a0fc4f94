"""``@component``: a reusable, idempotent step with a fluent policy API.

Example::

    @component
    def fetch(url: str) -> str: ...

    robust = fetch.with_retry(attempts=5, initial=0.5).with_timeout(10).with_cache(ttl=3600)

Outside a run a component just runs (policies apply); inside a run each call
is a span, a retry boundary and an error boundary.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import marshal
from collections.abc import Callable, Iterable
from typing import Any, Final, Generic, ParamSpec, TypeVar, Unpack, cast, overload

from ..runtime.context import current_frame, current_run
from ..runtime.invocation import Call, run_async, run_sync
from ..serialization import digest
from .policies import (
    CachePolicy,
    FallbackPolicy,
    Policies,
    RetryOptions,
    RetryPolicy,
    RetrySpec,
    TimeoutPolicy,
)

__all__ = ["Component", "component"]

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="Component[Any, Any]")


def _source_of(fn: Callable[..., Any]) -> str:
    """The function's source text (or its code's repr when no source is available)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return marshal.dumps(code).hex() if code else repr(fn)


class Component(Generic[P, R]):
    """A step; call it like the function it wraps."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        policies: Policies | None = None,
        secret_args: Iterable[str] = (),
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a component wraps a function, got {fn!r}")
        self.fn = fn
        self.name: str = name or cast(str, getattr(fn, "__name__", "component"))
        self.policies = policies or Policies()
        self.secret_args = frozenset(secret_args)
        self.signature = inspect.signature(fn)
        self._plain_signature()
        self.source = _source_of(fn)
        self.source_hash = digest(self.source)
        self.is_asyncgen = inspect.isasyncgenfunction(fn)
        self.is_async = inspect.iscoroutinefunction(fn) or self.is_asyncgen
        functools.update_wrapper(self, fn)
        unknown = self.secret_args - set(self.signature.parameters)
        if unknown:
            raise ValueError(f"secret_args {sorted(unknown)} are not parameters of {self.name}")

    def _plain_signature(self) -> None:
        """Cache parameter names when the signature has no *args, **kwargs or
        positional-only parameters, so ``bind`` can skip ``inspect`` on the hot path."""
        params = list(self.signature.parameters.values())
        plain = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        self._positional: tuple[str, ...] | None = (
            tuple(p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD) if plain else None
        )
        self._accepted = frozenset(p.name for p in params)
        self._required = frozenset(p.name for p in params if p.default is p.empty)
        positional = self._positional
        self._by_position = (
            positional if positional is not None and self._required <= set(positional) else None
        )
        """The parameter names when every required one is positional-or-keyword: positional
        arguments alone then fit from ``_least`` of them up to all (no further checks)."""
        self._least = len(self._required)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # --- fluent policies ----------------------------------------------------
    def _with(self: C, extra: Policies) -> C:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.policies = self.policies.merge(extra)
        return clone

    def with_policies(self: C, policies: Policies) -> C:
        """A copy with ``policies`` composed over the current ones."""
        return self._with(policies)

    def with_retry(self: C, attempts: int = 3, **options: Unpack[RetryOptions]) -> C:
        """A copy that retries; options as ``RetryPolicy`` (backoff, initial, max_delay, ...)."""
        return self._with(Policies(retry=RetryPolicy(attempts=attempts, **options)))

    def with_cache(self: C, ttl: float | None = None, key: Callable[..., str] | None = None) -> C:
        """A copy whose outputs are cached in Redis across runs for ``ttl`` seconds."""
        policy = CachePolicy(key=key) if ttl is None else CachePolicy(ttl=ttl, key=key)
        return self._with(Policies(cache=policy))

    def with_timeout(self: C, seconds: float) -> C:
        """A copy whose every attempt may take at most ``seconds``."""
        return self._with(Policies(timeout=TimeoutPolicy(seconds)))

    def with_fallback(self: C, value: object) -> C:
        """A copy that returns ``value`` (or calls it with the same arguments) once it fails."""
        return self._with(Policies(fallback=FallbackPolicy(value)))

    # --- calling ------------------------------------------------------------
    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by parameter name (``TypeError`` when they do not fit the signature)."""
        names = self._positional
        by_position = self._by_position
        if not kwargs and by_position is not None and self._least <= len(args) <= len(by_position):
            return dict(zip(by_position, args, strict=False))  # the commonest call
        if names is not None and len(args) <= len(names) and not kwargs.keys() & names[: len(args)]:
            inputs = dict(zip(names, args, strict=False))  # fast path: a plain signature
            inputs.update(kwargs)
            if inputs.keys() <= self._accepted and self._required <= inputs.keys():
                return inputs
        return dict(self.signature.bind(*args, **kwargs).arguments)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
        ctx = current_run()
        parent = current_frame()
        frame = ctx.child(parent, self.name) if ctx is not None and parent is not None else None
        return Call(self, args, kwargs, ctx, frame)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        call = self._call(args, kwargs)
        if not self.is_async:
            return run_sync(call)  # type: ignore[no-any-return]
        coro = run_async(call)
        ctx = call.ctx
        if ctx is not None and not ctx.on_loop_thread():
            # a sync workflow (in a thread) calling an async component: run it on the loop
            return asyncio.run_coroutine_threadsafe(coro, ctx.loop).result()  # type: ignore[no-any-return]
        return coro  # type: ignore[return-value]

    async def acall(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Await any component, sync ones included (they run in a thread, not on the loop)."""
        return await run_async(self._call(args, kwargs))


def _policies_from(
    retry: RetryPolicy | int | RetrySpec | None,
    cache: CachePolicy | float | bool | None,
    timeout: TimeoutPolicy | float | None,
    fallback: object,
) -> Policies:
    """The ``Policies`` of the decorator arguments (``retry=3``, ``cache=True``, ...)."""
    if isinstance(retry, int) and not isinstance(retry, bool):
        retry = RetryPolicy(attempts=retry)
    elif isinstance(retry, dict):
        retry = RetryPolicy(**retry)
    elif retry is True:  # like cache=True: the default policy (True reached Policies before)
        retry = RetryPolicy()
    if cache is True:
        cache = CachePolicy()
    elif isinstance(cache, int | float) and not isinstance(cache, bool):
        cache = CachePolicy(ttl=float(cache))
    if isinstance(timeout, int | float):
        timeout = TimeoutPolicy(float(timeout))
    return Policies(
        retry=retry or Policies().retry,
        cache=cache or None,
        timeout=timeout,
        fallback=FallbackPolicy(fallback) if fallback is not _NOTHING else None,
    )


_NOTHING: Final = object()
"""``fallback=`` not given (None is a fallback value like any other)."""


@overload
def component(fn: Callable[P, R], /) -> Component[P, R]: ...
@overload
def component(
    *,
    name: str | None = None,
    retry: RetryPolicy | int | RetrySpec | None = None,
    cache: CachePolicy | float | bool | None = None,
    timeout: TimeoutPolicy | float | None = None,
    fallback: object = ...,
    secret_args: Iterable[str] = (),
) -> Callable[[Callable[P, R]], Component[P, R]]: ...


def component(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | int | RetrySpec | None = None,
    cache: CachePolicy | float | bool | None = None,
    timeout: TimeoutPolicy | float | None = None,
    fallback: object = _NOTHING,
    secret_args: Iterable[str] = (),
) -> Any:
    """Make a function a component: ``@component`` or ``@component(retry=3, cache=3600, ...)``.

    ``retry``: attempts (``3``), a ``RetryPolicy`` or its fields as a dict; ``cache``: a
    TTL in seconds, ``True`` (the default TTL) or a ``CachePolicy``; ``timeout``: seconds
    per attempt or a ``TimeoutPolicy``; ``fallback``: the value to return once every
    attempt failed, or a callable taking the same arguments.
    """

    def wrap(f: Callable[..., Any]) -> Component[Any, Any]:
        policies = _policies_from(retry, cache, timeout, fallback)
        return Component(f, name=name, policies=policies, secret_args=secret_args)

    return wrap(fn) if fn is not None else wrap
