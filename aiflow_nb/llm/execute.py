"""Run an ``LLMCall``: sync and async twins (threads and ``time.sleep`` vs the loop)."""

from __future__ import annotations

from typing import Any

import tenacity

from .. import limits
from .call import NO_LEASE, LLMCall
from .streams import trace_async_stream, trace_sync_stream
from .targets import Target

__all__ = ["run_async", "run_sync"]


# --- sync -----------------------------------------------------------------------
def _once_sync(c: LLMCall, target: Target) -> tuple[Any, limits.Lease]:
    c.call.attempts += 1
    names, tokens = c.lease_request(target)
    if names:
        known = limits.declared()
        names = tuple(n for n in names if n in known)
    lease = limits.acquire(names, tokens) if names else NO_LEASE
    c.waited += lease.waited
    try:
        return target.method(c.ep)(**c.request(target)), lease
    except BaseException as exc:
        lease.release(0)
        c.note_failure(target, exc)
        raise


def _attempts_sync(c: LLMCall) -> tuple[Any, Target, limits.Lease]:
    targets = c.owner.targets
    for i, target in enumerate(targets):
        last = i == len(targets) - 1
        retrying = tenacity.Retrying(sleep=c.policy.sync_sleep(), **c.tenacity_kwargs(target, last))
        try:
            response, lease = retrying(_once_sync, c, target)
            return response, target, lease
        except Exception as exc:
            c.give_up_on(target, exc, last)
    raise AssertionError("unreachable: the last target raises")


def run_sync(c: LLMCall) -> Any:
    """Execute the call in this thread; return what the SDK returns."""
    done, value = c.begin(sync=True)
    if done:
        return value
    key = c.cache_key()
    if key is not None and c.call.ctx is not None:
        hit, value = c.from_cache(c.call.ctx.sync_client.get(key), sync=True)
        if hit:
            return value
    try:
        response, target, lease = _attempts_sync(c)
    except BaseException as exc:
        c.fail(exc)
        raise
    if c.stream:
        return trace_sync_stream(c, response, target, lease)
    used: int | None = None
    try:
        used = c.complete(response, target)
    finally:
        lease.release(used)
    return response


# --- async ----------------------------------------------------------------------
async def _once_async(c: LLMCall, target: Target) -> tuple[Any, limits.Lease]:
    c.call.attempts += 1
    names, tokens = c.lease_request(target)
    if names:
        known = await limits.adeclared()
        names = tuple(n for n in names if n in known)
    lease = await limits.aacquire(names, tokens) if names else NO_LEASE
    c.waited += lease.waited
    try:
        return await target.method(c.ep)(**c.request(target)), lease
    except BaseException as exc:
        await lease.arelease(0)
        c.note_failure(target, exc)
        raise


async def _attempts_async(c: LLMCall) -> tuple[Any, Target, limits.Lease]:
    targets = c.owner.targets
    for i, target in enumerate(targets):
        last = i == len(targets) - 1
        retrying = tenacity.AsyncRetrying(
            sleep=c.policy.async_sleep(), **c.tenacity_kwargs(target, last)
        )
        try:
            outcome: tuple[Any, limits.Lease] = await retrying(_once_async, c, target)
            return outcome[0], target, outcome[1]
        except Exception as exc:
            c.give_up_on(target, exc, last)
    raise AssertionError("unreachable: the last target raises")


async def run_async(c: LLMCall) -> Any:
    """Execute the call on the running loop; return what the SDK returns."""
    done, value = c.begin(sync=False)
    if done:
        return value
    key = c.cache_key()
    if key is not None and c.call.ctx is not None:
        hit, value = c.from_cache(await c.call.ctx.async_client.get(key), sync=False)
        if hit:
            return value
    try:
        response, target, lease = await _attempts_async(c)
    except BaseException as exc:
        c.fail(exc)
        raise
    if c.stream:
        return trace_async_stream(c, response, target, lease)
    used: int | None = None
    try:
        used = c.complete(response, target)
    finally:
        await lease.arelease(used)
    return response
