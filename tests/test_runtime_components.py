"""Components inside and outside runs: retries, cache, timeout, fallback, error boundaries,
spans, fan-out, publish/progress/streaming — against a real Redis."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

import aiflow_nb as af
from aiflow_nb import ComponentFailed, RunFailed, component, workflow


def types_of(handle: af.RunHandle) -> list[str]:
    return [e.type for e in handle.events()]


def test_component_outside_a_run_just_runs_with_its_policies() -> None:
    waits: list[float] = []
    calls = []

    @component(retry=dict(attempts=3, initial=0.01, sleep=waits.append))
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return x + 1

    assert flaky(1) == 2
    assert len(calls) == 3 and waits == [0.01, 0.02]


def test_async_component_outside_a_run_is_awaitable() -> None:
    @component
    async def double(x: int) -> int:
        return 2 * x

    assert asyncio.run(double(21)) == 42


def test_retries_count_attempts_and_compute_backoff_without_sleeping() -> None:
    waits: list[float] = []
    attempts = {"n": 0}

    @component(retry=dict(attempts=4, initial=0.5, max_delay=1.5, sleep=waits.append))
    def flaky() -> str:
        attempts["n"] += 1
        if attempts["n"] < 4:
            raise ConnectionError(f"outage {attempts['n']}")
        return "ok"

    @workflow
    def wf_retry() -> str:
        return flaky()

    handle = wf_retry.start()
    assert handle.result(timeout=10) == "ok"
    assert attempts["n"] == 4
    assert waits == [0.5, 1.0, 1.5]  # exponential, capped at max_delay, no real sleep
    retrying = [e for e in handle.events() if e.type == "span.retrying"]
    assert [e.attempt for e in retrying] == [1, 2, 3]
    assert [e.data["wait"] for e in retrying] == [0.5, 1.0, 1.5]
    assert retrying[0].data["error"] == {"type": "ConnectionError", "message": "outage 1"}
    span = next(s for s in handle.spans() if s.name == "flaky")
    assert span.attempts == 4 and span.status == "completed" and len(span.retries) == 3


def test_retry_on_limits_which_errors_are_retried() -> None:
    calls = {"n": 0}

    @component(retry=dict(attempts=5, initial=0, retry_on=(ConnectionError,)))
    def picky() -> None:
        calls["n"] += 1
        raise ValueError("bad input, retrying cannot help")

    @workflow
    def wf_picky() -> None:
        picky()

    with pytest.raises(RunFailed):
        wf_picky.run()
    assert calls["n"] == 1


def _make_cached(body: str):  # type: ignore[no-untyped-def]
    namespace: dict = {"component": component}
    exec(
        f"@component(cache=60)\ndef summarise(text):\n    calls.append(text)\n    return {body}\n",
        namespace | {"calls": CALLS},
        namespace,
    )
    return namespace["summarise"]


CALLS: list[str] = []


def test_cache_hits_across_runs_and_misses_when_the_source_changes() -> None:
    CALLS.clear()
    v1 = _make_cached("text.upper()")

    @workflow
    def wf_cache(text: str) -> str:
        return wf_cache.summariser(text)  # type: ignore[attr-defined, no-any-return]

    wf_cache.summariser = v1  # type: ignore[attr-defined]
    first = wf_cache.start(text="abc")
    assert first.result(timeout=10) == "ABC"
    second = wf_cache.start(text="abc")
    assert second.result(timeout=10) == "ABC"
    assert CALLS == ["abc"]  # second run served from the cache
    assert "span.cached" in types_of(second) and "span.cached" not in types_of(first)
    assert next(s for s in second.spans() if s.name == "summarise").cached

    wf_cache.summariser = _make_cached("text.lower()")  # type: ignore[attr-defined]
    third = wf_cache.start(text="abc")
    assert third.result(timeout=10) == "abc"  # new source, new key: a miss
    assert CALLS == ["abc", "abc"]
    other_args = wf_cache.start(text="xyz")
    assert other_args.result(timeout=10) == "xyz" and len(CALLS) == 3


def test_cache_key_function_overrides_default_key() -> None:
    calls: list[str] = []

    @component
    def norm(text: str) -> str:
        calls.append(text)
        return text.strip()

    keyed = norm.with_cache(ttl=60, key=lambda text: hashlib.md5(text.strip().encode()).hexdigest())

    @workflow
    def wf_key(text: str) -> str:
        return keyed(text)

    assert wf_key.run(text=" a ") == "a"
    assert wf_key.run(text="a") == "a"
    assert calls == [" a "]


def test_timeout_fails_an_attempt_of_async_and_sync_components() -> None:
    @component(timeout=0.1)
    async def sleepy() -> str:
        await asyncio.sleep(5)
        return "late"

    @component(timeout=0.1)
    def sleepy_sync() -> str:
        import time

        time.sleep(0.5)
        return "late"

    @workflow
    async def wf_timeout() -> list[str]:
        out = []
        for step in (sleepy, sleepy_sync):
            try:
                await step.acall()
            except ComponentFailed as exc:
                out.append(type(exc.error).__name__)
        return out

    handle = wf_timeout.start()
    assert handle.result(timeout=10) == ["ComponentTimeout", "ComponentTimeout"]
    failed = [e for e in handle.events() if e.type == "span.failed"]
    assert len(failed) == 2 and "timed out after 0.1 s" in failed[0].data["error"]["message"]


def test_fallback_value_and_callable_after_retries_are_exhausted() -> None:
    @component(retry=dict(attempts=2, initial=0), fallback="default")
    def broken(x: int) -> str:
        raise RuntimeError("down")

    @component
    def flaky(x: int) -> str:
        raise RuntimeError("down")

    alt = flaky.with_fallback(lambda x: f"alt-{x}")

    @workflow
    def wf_fallback() -> list[str]:
        return [broken(1), alt(2)]

    handle = wf_fallback.start()
    assert handle.result(timeout=10) == ["default", "alt-2"]
    spans = {s.name: s for s in handle.spans()}
    assert spans["broken"].fallback and spans["broken"].attempts == 2
    assert spans["broken"].error and spans["broken"].error["type"] == "RuntimeError"


def test_error_boundary_caught_by_the_workflow() -> None:
    @component(retry=dict(attempts=2, initial=0))
    def bad() -> None:
        raise KeyError("missing")

    @workflow
    def wf_catch() -> str:
        try:
            bad()
        except ComponentFailed as exc:
            assert isinstance(exc.__cause__, KeyError) and exc.attempts == 2
            return "recovered"
        return "unreachable"

    handle = wf_catch.start()
    assert handle.result(timeout=10) == "recovered"
    assert handle.status == "completed"
    assert "span.failed" in types_of(handle)


def test_uncaught_error_fails_the_run_with_traceback_in_event_and_record() -> None:
    @component
    def explode() -> None:
        raise ZeroDivisionError("boom in explode")

    @workflow
    def wf_uncaught() -> None:
        explode()

    handle = wf_uncaught.start()
    with pytest.raises(RunFailed, match="boom in explode") as info:
        handle.result(timeout=10)
    assert info.value.error["cause"] == "ZeroDivisionError"
    last = list(handle.events())[-1]
    assert last.type == "run.failed"
    assert "ZeroDivisionError" in last.data["error"]["traceback"]
    assert "raise ZeroDivisionError" in handle.record()["error"]["traceback"]
    assert handle.status == "failed"


def test_nested_spans_and_fan_out_parentage() -> None:
    @component
    async def leaf(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    @component
    async def branch(n: int) -> list[int]:
        return list(await asyncio.gather(*(leaf(i) for i in range(n))))

    @workflow
    async def tree(n: int) -> list[list[int]]:
        return list(await asyncio.gather(branch(n), branch(n + 1)))

    handle = tree.start(n=2)
    assert handle.result(timeout=10) == [[0, 1], [0, 1, 2]]
    frame = handle.to_pandas()
    assert len(frame) == 1 + 2 + 5
    root = frame[frame.name == "tree"].iloc[0]
    branches = frame[frame.name == "branch"]
    assert set(branches.parent_id) == {root.span_id}
    leaves = frame[frame.name == "leaf"]
    counts = leaves.groupby("parent_id").size().sort_values().tolist()
    assert counts == [2, 3] and set(leaves.parent_id) == set(branches.span_id)
    assert (frame.status == "completed").all()
    assert list(frame.columns) == [
        "span_id",
        "parent_id",
        "name",
        "status",
        "start",
        "end",
        "duration",
        "attempts",
        "cached",
        "replayed",
        "replayed_from",
        "error",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]


def test_sync_workflow_calls_async_components() -> None:
    @component
    async def add(a: int, b: int) -> int:
        return a + b

    @workflow
    def wf_sync(a: int) -> int:
        return add(a, 1) + add(a, 2)

    assert wf_sync.run(a=1) == 5


def test_publish_progress_and_streamed_output() -> None:
    @component
    async def writer(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            af.progress(i + 1, n, f"token {i}")
            yield f"w{i} "
        af.publish("note", {"n": n})

    @workflow
    async def wf_stream(n: int) -> str:
        return await writer(n)

    handle = wf_stream.start(n=3)
    assert handle.result(timeout=10) == "w0 w1 w2 "
    events = list(handle.events())
    deltas = [e.data["text"] for e in events if e.type == "output.delta"]
    assert "".join(deltas) == "w0 w1 w2 "
    progress = [e.data for e in events if e.type == "progress"]
    assert progress[-1] == {"done": 3, "total": 3, "message": "token 2"}
    published = [e for e in events if e.type == "publish"]
    assert published[0].data == {"label": "note", "value": {"n": 3}}
    span = next(s for s in handle.spans() if s.name == "writer")
    assert span.text == "w0 w1 w2 " and span.progress and span.progress["done"] == 3
    assert af.publish("outside", 1) is False and af.progress(1, 2) is False


def test_async_steps_that_never_suspend_are_written_as_they_go_not_at_the_end() -> None:
    """An async workflow whose steps await nothing slow never yields to the loop by itself;
    its writes must still go out while it runs (a watcher sees them live), not in one
    batch when it ends."""
    import threading
    import time

    from aiflow_nb import keys
    from aiflow_nb.store import sync_redis

    reached, release = threading.Event(), threading.Event()

    @component
    async def quick(x: int) -> int:
        return x + 1

    @component
    async def blocks_the_loop() -> None:
        reached.set()
        release.wait(20)  # holds the loop thread: nothing more is sent meanwhile

    @workflow
    async def wf_unsuspended(n: int) -> int:
        x = 0
        for _ in range(n):
            x = await quick(x)
        await blocks_the_loop()
        return x

    handle = wf_unsuspended.start(n=2000)
    try:
        assert reached.wait(30)
        time.sleep(0.2)  # a batch sent just before is applied by now
        written = sync_redis().xlen(keys.run_events(handle.run_id))
    finally:
        release.set()
    assert handle.result(timeout=30) == 2000
    assert written > 2000, f"only {written} of the run's ~4,000 events were out while it ran"
