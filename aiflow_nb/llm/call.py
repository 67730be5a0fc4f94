"""One traced LLM call: its span, retries on each target, fallbacks, rate limits, result.

Inside a run the call is a span of its own (a child of the component that made it),
journaled like a component step, so a resumed run does not pay twice for a finished call
(a streamed one once consumed to its end: a replay streams the record back,
``recorded.py``). Outside a run the same retries, fallbacks and rate
limits apply, with no events.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import openai
import tenacity

from .. import limits
from ..errors import LLMUnavailable
from ..runtime.context import current_frame, current_run
from ..runtime.invocation import Call
from ..serialization import loads
from . import recorded
from .attributes import (
    Endpoint,
    estimate_tokens,
    request_attributes,
    response_attributes,
    shown_output,
    usage_of,
)
from .retries import is_retryable, status_of
from .targets import Target

if TYPE_CHECKING:
    from .client import TracedBase

__all__ = ["CLIENT_KEY_MIN", "NO_LEASE", "OPTION_NAMES", "LLMCall", "client_keys", "rebuild"]

OPTION_NAMES = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
NO_LEASE = limits.Lease((), "", 0)


def rebuild(ep: Endpoint, doc: Any) -> Any:
    """The SDK object for a recorded (journaled or cached) response document."""
    try:
        return ep.response_type.model_validate(doc)
    except ValueError:
        from openai._models import construct_type

        return construct_type(type_=ep.response_type, value=doc)


def _given(value: Any) -> bool:
    return not isinstance(value, openai.NotGiven | openai.Omit)


CLIENT_KEY_MIN = 16
"""Characters: a client's ``api_key`` at least this long is masked as text in the run's
events; shorter ones (a local server's placeholder like ``"unused"``) are not keys, and
masking them would garble text that happens to contain them."""


def client_keys(targets: Sequence[Target]) -> list[str]:
    """The API keys of ``targets``' clients that look like keys (``CLIENT_KEY_MIN``)."""
    found = (getattr(t.raw, "api_key", None) for t in targets)
    return [k for k in found if isinstance(k, str) and len(k) >= CLIENT_KEY_MIN]


class LLMCall:
    """The bookkeeping of one ``create`` call; ``execute.run_sync``/``run_async`` drive it."""

    def __init__(self, owner: TracedBase, ep: Endpoint, kwargs: dict[str, Any]) -> None:
        self.owner = owner
        self.ep = ep
        kwargs = {k: v for k, v in kwargs.items() if _given(v)}
        self.options = {k: v for k, v in kwargs.items() if k in OPTION_NAMES}
        self.body = {k: v for k, v in kwargs.items() if k not in OPTION_NAMES}
        self.model: str | None = self.body.get("model")
        self.stream = bool(self.body.get("stream"))
        self.name = f"{ep.label} {self.model}"
        ctx, parent = current_run(), current_frame()
        frame = ctx.child(parent, self.name) if ctx is not None and parent is not None else None
        self.call = Call(owner.component_for(self.name), (self.body,), {}, ctx, frame)
        if ctx is not None:  # a key given to the client in code, not in the environment
            ctx.writer.add_secrets(client_keys(owner.targets))
        self.call.view = recorded.shown_text if self.stream else functools.partial(shown_output, ep)
        self.tries: list[dict[str, Any]] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.waited = 0.0
        self.policy = owner.retry

    # --- span bookkeeping ----------------------------------------------------
    def set_attributes(self, **attributes: Any) -> None:
        if self.call.frame is not None:
            self.call.frame.attributes.update(attributes)

    def begin(self, sync: bool) -> tuple[bool, Any]:
        """Replay or start the span: (True, SDK object) when the journal answers (a
        stream: ``ReplayedStream``, or ``AsyncReplayedStream`` unless ``sync``)."""
        done, doc = self.call.replay(self._replaying)
        if done:
            return True, self._answer(doc, sync)
        primary = self.owner.targets[0]
        self.set_attributes(
            **request_attributes(self.ep, self.body, primary.provider, primary.base_url)
        )
        self.call.start()  # span.started carries the request attributes
        return False, None

    def _replaying(self, doc: Any) -> None:
        """Before ``span.replayed`` (which shows the recorded attributes: usage, cost):
        a stream's recorded text again as ``output.delta`` events, for live readers."""
        for part in doc["parts"] if recorded.is_record(doc) else ():
            self.call.emit("output.delta", {"text": part})

    def _answer(self, doc: Any, sync: bool) -> Any:
        """What the SDK would give back for a recorded response document."""
        if not self.stream:
            return rebuild(self.ep, doc)
        chunks = recorded.chunks_of(doc)
        return recorded.ReplayedStream(chunks) if sync else recorded.AsyncReplayedStream(chunks)

    def cache_key(self) -> str | None:
        """The cache key to look up (none under a step a rerun was told to execute)."""
        return self.call.lookup_key()

    def from_cache(self, raw: bytes | str | None, sync: bool) -> tuple[bool, Any]:
        if raw is not None and self.stream:
            for part in loads(raw)["r"]["parts"]:
                self.call.emit("output.delta", {"text": part})
        hit, doc = self.call.cached(raw)
        return (True, self._answer(doc, sync)) if hit else (False, None)

    def outcome_attributes(self, target: Target) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.provider.name": target.provider,
            "aiflow.llm.attempts": self.call.attempts,
        }
        if self.waited > 0.0005:
            attrs["aiflow.llm.rate_limit_wait_s"] = round(self.waited, 4)
        if self.tries:
            attrs["aiflow.llm.tries"] = self.tries
        index = self.owner.targets.index(target)
        if index:
            attrs["aiflow.llm.fallback"] = {
                "index": index,
                "target": target.label(self.model),
                "from": self.owner.targets[0].label(self.model),
            }
        return attrs

    def complete(self, response: Any, target: Target) -> int | None:
        """Record a finished non-streamed response; return the tokens it used."""
        doc = response.model_dump(mode="json")
        usage = usage_of(self.ep, doc)
        self.set_attributes(
            **response_attributes(self.ep, doc, self.model, usage),
            **self.outcome_attributes(target),
        )
        self.call.complete(doc)
        return sum(usage) if usage else None

    def fail(self, exc: BaseException) -> None:
        """Emit ``span.failed`` (the caller then sees ``exc`` itself)."""
        self.call.fail(exc)

    # --- attempts ------------------------------------------------------------
    def request(self, target: Target) -> dict[str, Any]:
        return {**self.body, "model": target.model_for(self.model), **self.options}

    def lease_request(self, target: Target) -> tuple[tuple[str, ...], int]:
        """(rate-limit names, estimated tokens) for one attempt on ``target``."""
        if not self.owner.use_limits:
            return (), 0
        return target.limit_names(self.model), estimate_tokens(self.ep, self.body)

    def note_failure(self, target: Target, exc: BaseException) -> None:
        self.tries.append(
            {
                "attempt": self.call.attempts,
                "target": target.label(self.model),
                "status": status_of(exc),
                "error": f"{type(exc).__name__}: {exc}",
            }
        )

    def tenacity_kwargs(self, target: Target, last: bool) -> dict[str, Any]:
        kwargs = self.policy.tenacity_kwargs(functools.partial(self._on_retry, target))
        outage = self.owner.fallback_on

        def retry(exc: BaseException) -> bool:
            return is_retryable(exc) and (last or status_of(exc) not in outage)

        kwargs["retry"] = tenacity.retry_if_exception(retry)
        return kwargs

    def _on_retry(self, target: Target, state: tenacity.RetryCallState) -> None:
        exc = (state.outcome.exception() if state.outcome else None) or Exception("?")
        wait = state.next_action.sleep if state.next_action else 0.0
        if self.tries:
            self.tries[-1]["wait"] = wait
        self._emit_retrying(target, exc, wait)

    def _emit_retrying(self, target: Target, exc: BaseException, wait: float, **extra: Any) -> None:
        self.call.emit(
            "span.retrying",
            {
                "error": {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "status": status_of(exc),
                },
                "wait": wait,
                "target": target.label(self.model),
                **extra,
            },
        )

    def give_up_on(self, target: Target, exc: BaseException, last: bool) -> None:
        """After ``target`` failed for good: raise, or note the move to the next target."""
        if not is_retryable(exc):
            raise exc
        self.errors.append((target.label(self.model), exc))
        if last:
            raise LLMUnavailable(self.name, self.call.attempts, self.errors) from exc
        following = self.owner.targets[self.owner.targets.index(target) + 1]
        self._emit_retrying(target, exc, 0.0, fallback=following.label(self.model))
