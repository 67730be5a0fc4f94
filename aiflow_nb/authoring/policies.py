"""Policies: small, shareable, composable objects that shape one component call.

Sleeps and clocks are injected, so a test can retry without sleeping::

    waits = []
    retry = RetryPolicy(attempts=5, initial=0.1, sleep=waits.append)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import tenacity

from .. import defaults

__all__ = [
    "NO_RETRY",
    "CachePolicy",
    "FallbackPolicy",
    "Policies",
    "RetryOptions",
    "RetryPolicy",
    "RetrySpec",
    "Sleep",
    "TimeoutPolicy",
]

Sleep = Callable[[float], Any]
"""``sleep(seconds)``; what it returns is ignored (awaited first, if awaitable)."""


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, int | float) or isinstance(value, bool) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry with exponential (or fixed) backoff on the exception types in ``retry_on``."""

    attempts: int = 3
    backoff: Literal["exponential", "fixed"] = "exponential"
    initial: float = defaults.RETRY_INITIAL
    max_delay: float = defaults.RETRY_MAX_DELAY
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    sleep: Sleep | None = field(default=None, compare=False)
    retry_after: Callable[[BaseException], float | None] | None = field(default=None, compare=False)
    """``retry_after(exc)``: seconds the failed call asked to wait (e.g. a ``Retry-After``
    header), or None. When it answers, that wait replaces the backoff (capped at
    ``defaults.RETRY_AFTER_MAX``)."""

    def __post_init__(self) -> None:
        attempts = self.attempts
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, got {self.attempts!r}")
        if self.backoff not in ("exponential", "fixed"):
            raise ValueError(f"backoff must be 'exponential' or 'fixed', got {self.backoff!r}")
        _positive("initial", self.initial, allow_zero=True)
        _positive("max_delay", self.max_delay, allow_zero=True)
        _positive("jitter", self.jitter, allow_zero=True)
        if self.retry_after is not None and not callable(self.retry_after):
            raise ValueError(f"retry_after must be a callable, got {self.retry_after!r}")
        retry_on = self.retry_on if isinstance(self.retry_on, tuple) else (self.retry_on,)
        object.__setattr__(self, "retry_on", retry_on)
        for exc in retry_on:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise ValueError(f"retry_on must hold exception types, got {exc!r}")

    def wait(self) -> tenacity.wait.wait_base:
        """The tenacity wait strategy."""
        if self.backoff == "fixed":
            base: tenacity.wait.wait_base = tenacity.wait_fixed(self.initial)
        else:
            base = tenacity.wait_exponential(multiplier=self.initial, max=self.max_delay)
        base = base + tenacity.wait_random(0, self.jitter) if self.jitter else base
        return _WaitRetryAfter(base, self.retry_after) if self.retry_after else base

    def delay(self, attempt: int) -> float:
        """Backoff after failed attempt number ``attempt`` (without jitter)."""
        if self.backoff == "fixed":
            return self.initial
        return float(min(self.initial * 2 ** (attempt - 1), self.max_delay))

    def tenacity_kwargs(
        self, before_sleep: Callable[[tenacity.RetryCallState], None]
    ) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self.attempts),
            "wait": self.wait(),
            "retry": tenacity.retry_if_exception_type(self.retry_on),
            "reraise": True,
            "before_sleep": before_sleep,
        }

    def sync_sleep(self) -> Sleep:
        import time

        return self.sleep or time.sleep

    def async_sleep(self) -> Callable[[float], Awaitable[None]]:
        import asyncio

        if self.sleep is None:
            return asyncio.sleep
        sleep = self.sleep

        async def _sleep(seconds: float) -> None:
            result = sleep(seconds)
            if inspect.isawaitable(result):
                await result

        return _sleep


class _WaitRetryAfter(tenacity.wait.wait_base):
    """The wait the failed attempt asked for, else the backoff."""

    def __init__(
        self, base: tenacity.wait.wait_base, hint: Callable[[BaseException], float | None]
    ) -> None:
        self.base = base
        self.hint = hint

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        asked = self.hint(exc) if exc is not None else None
        if asked is not None and asked >= 0:
            return float(min(asked, defaults.RETRY_AFTER_MAX))
        return float(self.base(retry_state))


NO_RETRY = RetryPolicy(attempts=1)
"""One attempt: the retry policy of a component that asks for none."""


class RetryOptions(TypedDict, total=False):
    """``RetryPolicy``'s fields other than ``attempts``, as keywords:
    ``fetch.with_retry(5, initial=0.5, backoff="fixed")``."""

    backoff: Literal["exponential", "fixed"]
    initial: float
    max_delay: float
    jitter: float
    retry_on: tuple[type[BaseException], ...]
    sleep: Sleep | None
    retry_after: Callable[[BaseException], float | None] | None


class RetrySpec(RetryOptions, total=False):
    """``RetryPolicy``'s fields as a dict: ``@component(retry={"attempts": 4, "initial": 0.5})``."""

    attempts: int


@dataclass(frozen=True)
class CachePolicy:
    """Cache outputs in Redis across runs. ``key(*args, **kwargs) -> str`` overrides the key."""

    ttl: float = defaults.CACHE_TTL
    key: Callable[..., str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _positive("ttl", self.ttl)
        if self.key is not None and not callable(self.key):
            raise ValueError(f"cache key must be a callable, got {self.key!r}")


@dataclass(frozen=True)
class TimeoutPolicy:
    """Each attempt may take at most ``seconds``."""

    seconds: float

    def __post_init__(self) -> None:
        _positive("timeout", self.seconds)


@dataclass(frozen=True)
class FallbackPolicy:
    """After the last attempt fails: return ``value``, or call it with the same arguments
    (an async component's fallback may return an awaitable)."""

    value: object

    def resolve(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.value(*args, **kwargs) if callable(self.value) else self.value


@dataclass(frozen=True)
class Policies:
    """The policies of one component; ``merge`` composes them (right side wins)."""

    retry: RetryPolicy = NO_RETRY
    cache: CachePolicy | None = None
    timeout: TimeoutPolicy | None = None
    fallback: FallbackPolicy | None = None

    def merge(self, other: Policies) -> Policies:
        return Policies(
            retry=other.retry if other.retry is not NO_RETRY else self.retry,
            cache=other.cache or self.cache,
            timeout=other.timeout or self.timeout,
            fallback=other.fallback or self.fallback,
        )
