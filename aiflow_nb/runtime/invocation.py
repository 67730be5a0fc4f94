"""One component call: journal replay, cache, retries, timeout, fallback, span events.

``Call`` holds the bookkeeping shared by both paths; ``run_sync`` and
``run_async`` differ only in how they wait (threads vs the event loop).
Outside a run the same policies apply, with no events, journal or cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tenacity

from .. import defaults
from ..config import settings
from ..errors import (
    ComponentFailed,
    ComponentTimeout,
    Parked,
    error_document,
    event_error,
    safe_str,
)
from ..events.refs import JOURNAL, RECORD, value_fields
from ..redaction import MASK, may_name_credentials, secret_literals
from ..serialization import canonical, digest, dumps, encode_value, loads
from .context import Frame, RunContext, frame_var

if TYPE_CHECKING:
    from ..authoring.component import Component

__all__ = ["REDACTED", "Call", "run_async", "run_sync"]

_pool: concurrent.futures.ThreadPoolExecutor | None = None
REDACTED = MASK


def _threads() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix="aiflow-timeout")
    return _pool


class Call:
    """The bookkeeping of one call of ``component`` (in a run when ``ctx`` is set)."""

    __slots__ = (
        "_cache_key",
        "_hash",
        "_secret_inputs",
        "_size",
        "args",
        "attempts",
        "component",
        "ctx",
        "encoded",
        "frame",
        "inputs",
        "journaled",
        "kwargs",
        "policies",
        "rerun",
        "root",
        "started_at",
        "t0",
        "view",
    )

    def __init__(
        self,
        component: Component[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ctx: RunContext | None,
        frame: Frame | None,
        journaled: bool = True,
    ) -> None:
        self.component = component
        self.args = args
        self.kwargs = kwargs
        self.ctx = ctx
        self.frame = frame
        self.journaled = journaled and ctx is not None
        self.policies = component.policies
        self.attempts = 0
        self.t0 = time.perf_counter()
        self.started_at: float | None = None
        """Wall-clock time of ``span.started`` (the journal keeps it with the result)."""
        self.inputs = component.bind(args, kwargs) if ctx is not None else {}
        self._hash = ""
        self._size = 0
        """Bytes of the arguments' canonical JSON (what ``span.started`` would show)."""
        self._secret_inputs = False
        """The arguments may hold a secret (``args_hash`` knows): masked before shown."""
        self._cache_key: str | None = None
        self.view: Callable[[Any], Any] | None = None
        """What ``span.completed`` shows of the output (all of it when None)."""
        self.root = frame is not None and frame.parent_id is None
        """The workflow's own span: its inputs and output are the run record's."""
        self.encoded: bytes | None = None
        """The JSON of the result (set by ``succeed``; the executor stores it once)."""
        self.rerun: str | None = None
        """In a rerun, why this step executes instead of replaying (``span.started``)."""

    # --- events -------------------------------------------------------------
    def emit(
        self,
        type: str,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
        keys_checked: bool = False,
    ) -> None:
        """``keys_checked``: every key of ``data`` the caller did not write itself was
        checked for credential names already (the writer then checks only for the run's
        known secrets)."""
        if self.ctx is None or self.frame is None:
            return
        frame = self.frame
        self.ctx.writer.span_event(
            type,
            frame.span_id,
            frame.parent_id,
            self.component.name,
            self.attempts or None,
            data,
            ts,
            keys_checked,
        )

    def _public_inputs(self) -> dict[str, Any]:
        secret = self.component.secret_args
        if not secret:
            return self.inputs  # shown as is, never changed: no copy
        return {k: (REDACTED if k in secret else v) for k, v in self.inputs.items()}

    def args_hash(self) -> str:
        """The arguments' digest (computed once, before the call's first event)."""
        if not self._hash:
            data = canonical(self.inputs, self._arguments_named)
            self._note_secrets(data)
            self._hash, self._size = digest(data), len(data)
        return self._hash

    def _arguments_named(self) -> str:
        return f"arguments of component {self.component.name!r}"

    def _output_named(self) -> str:
        return f"output of {'workflow' if self.root else 'component'} {self.component.name!r}"

    def _note_secrets(self, doc: bytes) -> None:
        """From here on no event of the run shows the values of this call's secret and
        credential-named arguments (``doc``: the arguments' JSON, a cheap pre-check)."""
        if self.ctx is None:
            return
        names = self.component.secret_args
        named = may_name_credentials(doc)  # once: the slowest check, on the hot path
        if names or named:
            self.ctx.writer.add_secrets(secret_literals(names, self.inputs))
        redactor = self.ctx.writer.redactor
        self._secret_inputs = named or (redactor.known and redactor.may_hold_known(doc))

    def _mask(self, value: Any) -> Any:
        """``value`` with the run's secrets masked: done before a value is cut or
        previewed for an event, so no part of a secret is left at the cut."""
        return self.ctx.writer.mask(value) if self.ctx is not None else value

    def _holds_secret(self, encoded: bytes) -> bool:
        return self.ctx is not None and self.ctx.writer.redactor.may_hold(encoded)

    # --- journal ------------------------------------------------------------
    def replay(self, before: Callable[[Any], None] | None = None) -> tuple[bool, Any]:
        """(True, recorded result) when the journal holds this step; in a rerun, else
        when the seed (the source run's journal) holds it with the same code and
        arguments and ``rerun_steps`` does not name it. ``before`` is called with the
        result ahead of ``span.replayed`` (which shows the frame's attributes then)."""
        if not self.journaled or self.ctx is None or self.frame is None:
            return False, None
        raw = self.ctx.journal.get(self.frame.key)
        if raw is None:
            return self._replay_seed(before) if self.ctx.forked_from else (False, None)
        doc = loads(raw)
        if doc.get("h") != self.args_hash():
            self.emit(
                "log",
                {
                    "level": "warning",
                    "message": (
                        f"replay diverged at step {self.frame.key}: the journal recorded other "
                        "arguments for this step, so it runs again instead of replaying"
                    ),
                },
            )
            return False, None
        return True, self._replayed(raw, doc, before, doc.get("f"), self.ctx.journal)

    def _replay_seed(self, before: Callable[[Any], None] | None) -> tuple[bool, Any]:
        """A rerun's step not in its own journal: replayed from the seed (and journaled
        as its own) unless named, its code changed or its arguments did (``rerun``: why
        it executes, shown by ``span.started``). A replayed step is journaled as this
        run's own with ``f``: the source run, so a resume still says where it came from."""
        assert self.ctx is not None and self.frame is not None
        key = self.frame.key
        raw = self.ctx.seed.get(key)
        doc = loads(raw) if raw is not None else None
        if self.ctx.rerun_named(key, self.component.name):
            self.rerun = "named"
        elif doc is None:
            self.rerun = "not in source"
        elif doc.get("c", self.component.source_hash) != self.component.source_hash:
            self.rerun = "code changed"
        elif doc.get("h") != self.args_hash():
            self.rerun = "arguments changed"
        if self.rerun is not None or raw is None or doc is None:
            return False, None
        source = self.ctx.forked_from
        self.ctx.writer.journal(key, dumps({**doc, "f": source}))  # ``f``: where it came from
        return True, self._replayed(raw, doc, before, source, self.ctx.seed)

    def _replayed(
        self,
        raw: bytes | str,
        doc: dict[str, Any],
        before: Callable[[Any], None] | None,
        source: str | None,
        entries: dict[str, Any],
    ) -> Any:
        """Emit ``span.replayed`` for the journal document ``doc`` (``raw``: its JSON;
        ``source``: the run it was recorded in, when not this one) with the recorded
        span's attributes (``a``: what it spent, not spent now) under the frame's, and
        what the steps nested under it (in ``entries``, where ``doc`` came from) spent,
        as ``saved``; its result."""
        assert self.frame is not None
        secret = self._holds_secret(raw if isinstance(raw, bytes) else raw.encode())
        if before is not None:
            before(doc.get("r"))
        mask = self._mask if secret else None
        shown = _replayed(doc, self.frame.key, len(raw), mask, self.view)
        if source is not None:
            shown["replayed_from"] = source
        attributes = {**(doc.get("a") or {}), **(self.frame.attributes or {})}
        if attributes:
            shown["attributes"] = self._mask(attributes) if secret else attributes
        if self.ctx is not None:
            nested = self.ctx.nested(entries, self.frame.key)
            if nested:
                shown["saved"] = _saved(nested)
        self.emit("span.replayed", shown)
        return doc.get("r")

    def start(self) -> None:
        """Emit ``span.started``."""
        self.args_hash()
        key = self.frame.key if self.frame else None
        public = self._public_inputs()
        if self._secret_inputs:
            public = self._mask(public)
        if self.root:  # the run's inputs: stored once, in the record (events/refs.py)
            secret = self.component.secret_args
            shown = value_fields(
                "inputs", public, at=RECORD, field="inputs", mask=secret, size=self._size
            )
        else:  # a step's arguments are stored nowhere: a large one is only previewed
            shown = value_fields("inputs", public, size=self._size)
        shown["key"] = key
        if self.rerun is not None:
            shown["rerun"] = self.rerun
        frame = self.frame
        checked = True  # the inputs' keys were checked by args_hash
        if frame is not None and frame.attributes:  # what the call knew of itself
            shown["attributes"] = dict(frame.attributes)
            checked = False  # attributes are the call's own
        self.started_at = time.time()
        self.emit("span.started", shown, ts=self.started_at, keys_checked=checked)

    def begin(self) -> str | None:
        """Start the span; return the cache key to look up, if caching applies."""
        self.start()
        return None if self.policies.cache is None else self.lookup_key()

    def lookup_key(self) -> str | None:
        """The cache key to look up: none for a step a rerun was told to execute (named
        in ``rerun_steps``, or under one), which then refreshes the cache instead."""
        return None if self.rerun == "named" else self.cache_key()

    # --- cache --------------------------------------------------------------
    def cache_key(self) -> str | None:
        """The call's cache key (computed once), or None when it is not cached."""
        policy = self.policies.cache
        if policy is None or self.ctx is None:
            return None
        from .. import keys

        if self._cache_key is None:
            if policy.key is not None:
                part = str(policy.key(*self.args, **self.kwargs))
            else:
                part = f"{self.component.source_hash}:{self.args_hash()}"
            self._cache_key = keys.cache(self.component.name, part)
        return self._cache_key

    def cached(self, raw: bytes | str | None) -> tuple[bool, Any]:
        """A cache hit holds the same document as a journal record: it is journaled as is."""
        if raw is None:
            return False, None
        value = loads(raw)["r"]
        end = time.time()
        encoded = dumps(value, f"cached output of component {self.component.name!r}")
        if self.journaled:  # this run's hash and times, not those of the run that cached it
            self._record(self._document(encoded, end))
        self.emit("span.cached", self._shown(value, encoded), ts=end)
        return True, value

    # --- outcomes -----------------------------------------------------------
    def on_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        message = safe_str(exc) if exc is not None else ""
        self.emit(
            "span.retrying",
            {
                "error": event_error(self._mask({"type": type(exc).__name__, "message": message})),
                "wait": wait,
            },
        )

    def complete(self, value: Any, fallback_from: BaseException | None = None) -> Any:
        """``succeed``, or, when the value cannot be stored (``SerializationError``,
        ``ValueTooLarge``, a failing view), end the span ``failed`` with that error and
        raise it as is: the body did not fail, its result did."""
        try:
            return self.succeed(value, fallback_from)
        except Exception as exc:
            self.fail(exc, wrap=False)
            raise

    def succeed(self, value: Any, fallback_from: BaseException | None = None) -> Any:
        if self.ctx is None:
            return value
        end = time.time()
        encoded = encode_value(value, self._output_named, settings().max_value_bytes)
        doc = self._document(encoded, end)
        if type(value) not in _SAME_AFTER_JSON:  # the caller gets the stored value
            value = loads(encoded)
        self.encoded = encoded
        self._record(doc)
        cache = self.policies.cache
        if cache is not None and fallback_from is None and self.journaled:
            cache_key = self.cache_key()
            if cache_key is not None:
                self.ctx.writer.raw("set", cache_key, doc, px=int(cache.ttl * 1000))
        data = self._shown(value, encoded)  # a dict of its own
        data["duration"] = time.perf_counter() - self.t0
        data["attempts"] = self.attempts
        # the output's keys were checked by _shown (unless a view made other data)
        checked = self.view is None
        if fallback_from is not None:
            data["fallback"] = True
            data["error"] = event_error(error_document(fallback_from, self._mask))
            checked = False
        frame = self.frame
        if frame is not None and frame.attributes:
            data["attributes"] = dict(frame.attributes)
            checked = False
        self.emit("span.completed", data, ts=end, keys_checked=checked)
        return value

    def _shown(self, value: Any, encoded: bytes) -> dict[str, Any]:
        """The ``output`` an event shows (``events/refs.py``): the value, or a reference
        to where it is stored once (the record for the workflow, the journal for a step);
        a ``view`` of it is shown as is, or previewed when large. A value holding a secret
        is masked first and never referred to in the journal (which keeps it as returned:
        a reader resolving the reference would show it); the record's output is masked."""
        secret = self._holds_secret(encoded)
        if secret:
            value = self._mask(value)
            encoded = dumps(value)
        if self.view is not None:
            return value_fields("output", self.view(value))
        if self.root:
            return value_fields("output", value, encoded, at=RECORD, field="output")
        if self.journaled and self.frame is not None and not secret:
            return value_fields("output", value, encoded, at=JOURNAL, field=self.frame.key)
        return value_fields("output", value, encoded)

    def _document(self, encoded: bytes, end: float) -> bytes:
        """The journal (and cache) document: args hash, result (``encoded``, its JSON),
        the span's start and end (``s``/``e``), which a replay shows instead of its own
        time, the component's source hash (``c``: a rerun replays only unchanged code)
        and the span's attributes when it has some (``a``: tokens and cost of an LLM
        call, which a replay reports as not spent)."""
        head_doc: dict[str, Any] = {
            "h": self._hash,
            "s": self.started_at,
            "e": end,
            "c": self.component.source_hash,
        }
        if self.frame is not None and self.frame.attributes:
            head_doc["a"] = self.frame.attributes
        head = dumps(head_doc)
        return b"".join((head[:-1], b',"r":', encoded, b"}"))

    def _add_attributes(self, data: dict[str, Any]) -> None:
        if self.frame is not None and self.frame.attributes:
            data["attributes"] = dict(self.frame.attributes)

    def _record(self, doc: bytes) -> None:
        if self.journaled and self.ctx is not None and self.frame is not None:
            self.ctx.writer.journal(self.frame.key, doc)

    def recover(self, exc: Exception) -> Any:
        """The fallback's value (maybe awaitable) after the last attempt failed with
        ``exc``; without a fallback, emit ``span.failed`` and raise into the caller."""
        fallback = self.policies.fallback
        if fallback is None:
            err = self.fail(exc)
            if err is exc:
                raise exc
            raise err from exc
        return fallback.resolve(self.args, self.kwargs)

    def fail(self, exc: BaseException, wrap: bool = True) -> BaseException:
        """Emit ``span.failed``; return the exception to raise into the caller (an
        ``Exception`` wrapped in ``ComponentFailed`` unless ``wrap`` is False)."""
        err: BaseException = exc
        if wrap and isinstance(exc, Exception) and not isinstance(exc, ComponentFailed):
            err = ComponentFailed(self.component.name, self.attempts, exc)
        data = {
            "error": event_error(error_document(err, self._mask)),
            "attempts": self.attempts,
            "duration": self.elapsed(),
        }
        if isinstance(exc, asyncio.CancelledError):
            data["cancelled"] = True
        self._add_attributes(data)
        self.emit("span.failed", data)
        return err

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


_SAME_AFTER_JSON = (int, str, float, bool, type(None))
"""Types whose values ``encode_value`` accepted come back equal from their JSON (it
refuses NaN, infinities and ints beyond 64 bits)."""

_LLM_OPERATION = "gen_ai.operation.name"
_USAGE = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "aiflow.cost_usd")
"""The attributes an LLM span's usage is in (``llm/attributes.py``, above this layer)."""


def _saved(nested: list[Any]) -> dict[str, Any]:
    """What replaying a step also replays (its nested journal entries): how many steps,
    how many of them LLM calls, their recorded tokens and cost."""
    saved: dict[str, Any] = {
        "steps": 0,
        "llm_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost": 0.0,
    }
    for raw in nested:
        attrs = loads(raw).get("a") or {}
        saved["steps"] += 1
        saved["llm_calls"] += _LLM_OPERATION in attrs
        saved["input_tokens"] += int(attrs.get(_USAGE[0]) or 0)
        saved["output_tokens"] += int(attrs.get(_USAGE[1]) or 0)
        saved["cost"] += float(attrs.get(_USAGE[2]) or 0.0)
    return saved


def _replayed(
    doc: dict[str, Any],
    key: str,
    size: int,
    mask: Callable[[Any], Any] | None = None,
    view: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """``span.replayed`` data: the recorded output (a reference to the journal entry
    when large: ``size`` is the entry's; ``mask``ed, and never by reference, when it
    holds a secret; the ``view`` of it when the call has one, as ``span.completed``)
    and, when the journal entry has them (older entries lack them: the replay then
    shows its own time), the original attempt's start and end."""
    value = doc.get("r")
    if view is not None:
        shown: dict[str, Any] = value_fields("output", view(mask(value) if mask else value))
    elif mask is not None:
        shown = value_fields("output", mask(value))
    elif size <= defaults.EVENT_VALUE_INLINE_BYTES:
        shown = {"output": value}
    else:
        shown = value_fields("output", value, at=JOURNAL, field=key)
    data: dict[str, Any] = {**shown, "key": key}
    if doc.get("s") is not None and doc.get("e") is not None:
        data["start"], data["end"] = doc["s"], doc["e"]
    return data


# --- sync path ---------------------------------------------------------------
def _attempt_sync(call: Call) -> Any:
    call.attempts += 1
    fn = call.component.fn
    timeout = call.policies.timeout
    if timeout is None:
        return fn(*call.args, **call.kwargs)
    ctx = contextvars.copy_context()
    future = _threads().submit(ctx.run, fn, *call.args, **call.kwargs)
    try:
        return future.result(timeout=timeout.seconds)
    except concurrent.futures.TimeoutError:
        raise ComponentTimeout(call.component.name, timeout.seconds) from None


def run_sync(call: Call) -> Any:
    """Execute ``call`` in this thread."""
    done, value = call.replay()
    if done:
        return value
    key = call.begin()
    if key is not None and call.ctx is not None:
        hit, value = call.cached(call.ctx.sync_client.get(key))
        if hit:
            return value
    token = frame_var.set(call.frame) if call.frame else None
    retry = call.policies.retry
    try:
        if retry.attempts == 1:  # fast path: no retrying machinery for a single attempt
            value = _attempt_sync(call)
        else:
            retrying = tenacity.Retrying(
                sleep=retry.sync_sleep(), **retry.tenacity_kwargs(call.on_retry)
            )
            value = retrying(_attempt_sync, call)
    except Exception as exc:
        return call.complete(call.recover(exc), fallback_from=exc)
    except Parked:  # the run parks at a wait inside: the span stays open, not failed
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        if token is not None:
            frame_var.reset(token)
    return call.complete(value)


# --- async path --------------------------------------------------------------
async def _consume(call: Call, stream: Any) -> str:
    parts: list[str] = []
    async for chunk in stream:
        text = str(chunk)
        parts.append(text)
        call.emit("output.delta", {"text": text})
    return "".join(parts)


async def _invoke(call: Call) -> Any:
    component = call.component
    fn = component.fn
    if component.is_asyncgen:
        return await _consume(call, fn(*call.args, **call.kwargs))
    if component.is_async:
        result = await fn(*call.args, **call.kwargs)
    else:
        result = await asyncio.to_thread(fn, *call.args, **call.kwargs)
    if hasattr(result, "__aiter__") and not isinstance(result, str | bytes):
        return await _consume(call, result)
    return result


async def _attempt_async(call: Call) -> Any:
    call.attempts += 1
    timeout = call.policies.timeout
    if timeout is None:
        return await _invoke(call)
    try:
        return await asyncio.wait_for(_invoke(call), timeout.seconds)
    except TimeoutError:
        raise ComponentTimeout(call.component.name, timeout.seconds) from None


async def run_async(call: Call) -> Any:
    """Execute ``call`` on the running event loop."""
    if call.ctx is not None and call.ctx.writer.backlogged:
        await asyncio.sleep(0)  # let the writer send: the steps so far may not have yielded
    done, value = call.replay()
    if done:
        return value
    key = call.begin()
    if key is not None and call.ctx is not None:
        hit, value = call.cached(await call.ctx.async_client.get(key))
        if hit:
            return value
    token = frame_var.set(call.frame) if call.frame else None
    retry = call.policies.retry
    try:
        if retry.attempts == 1 and call.policies.timeout is None:  # the commonest call
            call.attempts += 1  # ``_attempt_async`` without its frame
            value = await _invoke(call)
        elif retry.attempts == 1:  # no retrying machinery for a single attempt
            value = await _attempt_async(call)
        else:
            retrying = tenacity.AsyncRetrying(
                sleep=retry.async_sleep(), **retry.tenacity_kwargs(call.on_retry)
            )
            value = await retrying(_attempt_async, call)
    except Exception as exc:
        result = call.recover(exc)
        if inspect.isawaitable(result):
            result = await result
        return call.complete(result, fallback_from=exc)
    except Parked:  # the run parks at a wait inside: the span stays open, not failed
        raise
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        if token is not None:
            frame_var.reset(token)
    return call.complete(value)
