"""Which LLM errors are worth another attempt, and how long the provider asked us to wait.

Retried: rate limits (429), timeouts and connection errors, 408, 409 and every 5xx. The
wait honours ``retry-after-ms`` and ``Retry-After`` (seconds or an HTTP date); without
them, exponential backoff. The SDK's own retries are turned off (``max_retries=0``) so
the two never multiply.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import replace
from typing import Any

import openai

from .. import defaults
from ..authoring.policies import RetryPolicy

__all__ = [
    "OUTAGE_STATUS",
    "RETRY_STATUS",
    "is_retryable",
    "llm_retry_policy",
    "retry_after",
    "status_of",
]

RETRY_STATUS = frozenset({408, 409, 429})
OUTAGE_STATUS = frozenset({503, 529})
"""Statuses that move a call to its next fallback at once instead of retrying."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error, or None (connection errors, timeouts, others)."""
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def is_retryable(exc: BaseException) -> bool:
    """True for rate limits, timeouts, connection errors, 408, 409 and 5xx."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    status = status_of(exc)
    return status is not None and (status in RETRY_STATUS or status >= 500)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (``retry-after-ms``, ``Retry-After``), or None."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def llm_retry_policy(retry: RetryPolicy | int | dict[str, Any] | None = None) -> RetryPolicy:
    """The retry policy of an LLM client: ``retry`` (attempts, a dict of ``RetryPolicy``
    options, or a policy) with the provider's Retry-After honoured. ``retry_on`` is not
    used: which errors retry is decided by ``is_retryable``."""
    if isinstance(retry, RetryPolicy):
        policy = retry
    else:
        options: dict[str, Any] = {
            "attempts": defaults.LLM_RETRY_ATTEMPTS,
            "initial": defaults.LLM_RETRY_INITIAL,
            "max_delay": defaults.LLM_RETRY_MAX_DELAY,
        }
        if isinstance(retry, int) and not isinstance(retry, bool):
            options["attempts"] = retry
        elif isinstance(retry, dict):
            options.update(retry)
        elif retry is not None:
            raise ValueError(f"retry must be an int, a dict or a RetryPolicy, got {retry!r}")
        policy = RetryPolicy(**options)
    return policy if policy.retry_after else replace(policy, retry_after=retry_after)
