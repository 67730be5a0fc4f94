"""Streamed LLM calls: the caller gets the SDK's own ``Stream``/``AsyncStream`` back, whose
iterator also publishes each text delta as an ``output.delta`` event and ends the span
when the stream ends (completed, failed, or closed early). A stream consumed to its end
is journaled (and cached) as a record (``recorded.py``) a replay streams back."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

from .. import limits
from . import recorded
from .attributes import StreamState, estimate_prompt_tokens, response_attributes
from .targets import Target

if TYPE_CHECKING:
    from .call import LLMCall

__all__ = ["trace_async_stream", "trace_sync_stream"]


def _finish(
    c: LLMCall, state: StreamState, target: Target, error: BaseException | None, exhausted: bool
) -> int:
    """End the span (once); return the tokens the stream used (estimated without usage)."""
    if state.ended:
        return 0
    state.ended = True
    usage = state.usage
    if usage is None:
        usage = (estimate_prompt_tokens(c.ep, c.body), len(state.parts))
        c.set_attributes(**{"aiflow.llm.usage_estimated": True})
    attrs = response_attributes(c.ep, state.document(), c.model, usage)
    attrs.update(c.outcome_attributes(target))
    if state.first_token is not None:
        attrs["aiflow.llm.time_to_first_token_s"] = round(state.first_token, 4)
    if error is None and not exhausted:
        attrs["aiflow.llm.stream_closed_early"] = True
    c.set_attributes(**attrs)
    if error is not None:
        c.fail(error)
        return sum(usage)
    record = recorded.record_of(c.ep, c.body, state) if exhausted else None
    if record is None:  # abandoned before its end (or not replayable): it runs again
        c.call.journaled = False
        c.call.complete(state.text)
    else:
        c.call.complete(record)
    return sum(usage)


def _publish(c: LLMCall, state: StreamState, chunk: Any) -> None:
    delta = state.feed(chunk)
    if delta:
        c.call.emit("output.delta", {"text": delta})


def trace_sync_stream(c: LLMCall, stream: Any, target: Target, lease: limits.Lease) -> Any:
    """``stream`` (an ``openai.Stream``) with its iterator traced."""
    state = StreamState(c.ep)
    inner: Iterator[Any] = stream._iterator

    def traced() -> Generator[Any, None, None]:
        error: BaseException | None = None
        exhausted = False
        try:
            for chunk in inner:
                _publish(c, state, chunk)
                yield chunk
            exhausted = True
        except Exception as exc:
            error = exc
            raise
        finally:
            lease.release(_finish(c, state, target, error, exhausted))

    gen = traced()
    stream._iterator = gen
    close = stream.close

    def closing() -> None:  # closed before (or without) iterating to the end
        close()
        gen.close()
        if not state.ended:
            lease.release(_finish(c, state, target, None, False))

    stream.close = closing
    return stream


def trace_async_stream(c: LLMCall, stream: Any, target: Target, lease: limits.Lease) -> Any:
    """``stream`` (an ``openai.AsyncStream``) with its iterator traced."""
    state = StreamState(c.ep)
    inner: AsyncIterator[Any] = stream._iterator

    async def traced() -> AsyncGenerator[Any, None]:
        error: BaseException | None = None
        exhausted = False
        try:
            async for chunk in inner:
                _publish(c, state, chunk)
                yield chunk
            exhausted = True
        except Exception as exc:
            error = exc
            raise
        finally:
            await lease.arelease(_finish(c, state, target, error, exhausted))

    gen = traced()
    stream._iterator = gen
    close = stream.close

    async def closing() -> None:
        await close()
        await gen.aclose()
        if not state.ended:
            await lease.arelease(_finish(c, state, target, None, False))

    stream.close = closing
    return stream
