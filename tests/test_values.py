"""Values stored once, with limits: a run's inputs and output live in its record, a step's
result in its journal, and events refer to them when large; AIFLOW_MAX_VALUE_BYTES caps
each with ValueTooLarge; error messages in events are cut, the record keeps them whole.

Real Redis (MEMORY USAGE of the run's keys), the real in-process worker, a real uvicorn
server for the REST reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

import aiflow_nb as af
from aiflow_nb import component, defaults, keys, workflow
from aiflow_nb.access.spans import resolve_values
from aiflow_nb.notebook.display import snapshot
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.trace import SpanTree

from support.api import KEY, served_client
from support.helpers import namespace_keys

MB = 1024 * 1024


@component
def measure(text: str) -> int:
    return len(text)


@workflow
def big_in(text: str) -> int:
    return measure(text)


@workflow
def big_out(n: int) -> str:
    return "c" * n


@component
def make(n: int) -> str:
    return "s" * n


@workflow
def big_step(n: int) -> int:
    return len(make(n))


@component
def explode(n: int) -> None:
    raise ValueError("E" * n)


@workflow
def big_error(n: int) -> None:
    explode(n)


@workflow
def echo_value(value: object) -> object:
    return value


@workflow(secret_args=["api_key"])
def big_secret(api_key: str, text: str) -> int:
    return len(text) + len(api_key)


@pytest.fixture
def roomy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A value limit above the 20 MB of these tests (the default is 16 MiB)."""
    monkeypatch.setenv("AIFLOW_MAX_VALUE_BYTES", str(64 * MB))
    af.configure()
    yield
    monkeypatch.delenv("AIFLOW_MAX_VALUE_BYTES")
    af.configure()


@pytest.fixture
def http(namespace: str) -> Iterator[httpx.Client]:
    with served_client(api_keys=(KEY,)) as c:
        yield c


def run_bytes(r: redis.Redis, run_id: str) -> int:
    """Bytes of Redis memory every key of the run takes (exact: SAMPLES 0)."""
    found = [k for k in keys.run_keys(run_id) if r.exists(k)]
    assert found, "the run has keys"
    return sum(int(r.memory_usage(k, samples=0) or 0) for k in found)


def stream_events(http: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/runs/{run_id}/events", params={"format": "ndjson"}, timeout=60)
    assert r.status_code == 200, r.text
    return [orjson.loads(line) for line in r.text.splitlines() if line.strip()]


def raw_events(r: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(f[b"e"]) for _, f in r.xrange(keys.run_events(run_id))]


def test_a_20_mb_input_is_stored_once_and_every_reader_still_shows_it(
    redis_client: redis.Redis, http: httpx.Client, roomy: None
) -> None:
    ensure_local_worker(force=True)
    text = "a" * (20 * MB)
    handle = big_in.start(text=text)
    assert handle.result(timeout=60) == len(text)
    size = run_bytes(redis_client, handle.run_id)
    assert size < 1.3 * len(text), f"{size / MB:.1f} MB for a 20 MB input"
    # the events refer to the record's inputs; the step's argument is only previewed
    events = raw_events(redis_client, handle.run_id)
    queued = next(e for e in events if e["type"] == "run.queued")
    assert "inputs" not in queued["data"]
    ref = queued["data"]["inputs_ref"]
    assert ref["at"] == "record" and ref["field"] == "inputs" and ref["bytes"] > len(text)
    assert len(ref["preview"]) == defaults.EVENT_VALUE_PREVIEW_CHARS
    # readers
    assert handle.record()["inputs"] == {"text": text}
    root, step = handle.spans()
    assert root.inputs == {"text": text} and not root.refs
    assert step.refs["inputs"]["bytes"] > len(text) and step.output == len(text)
    frame = handle.to_pandas()
    assert list(frame["status"]) == ["completed", "completed"]
    doc = http.get(f"/runs/{handle.run_id}", timeout=60).json()
    assert doc["inputs"] == {"text": text} and doc["output"] == len(text)
    fed = stream_events(http, handle.run_id)
    assert next(e for e in fed if e["type"] == "run.queued")["data"]["inputs"] == {"text": text}
    root_started = next(e for e in fed if e["type"] == "span.started" and e["parent_id"] is None)
    assert root_started["data"]["inputs"] == {"text": text}


def test_a_large_output_is_stored_once_and_every_reader_still_shows_it(
    redis_client: redis.Redis, http: httpx.Client
) -> None:
    ensure_local_worker(force=True)
    n = 12 * MB
    handle = big_out.start(n=n)
    value = handle.result(timeout=60)
    assert value == "c" * n
    size = run_bytes(redis_client, handle.run_id)
    assert size < 1.3 * n, f"{size / MB:.1f} MB for a 12 MB output"
    completed = next(
        e for e in raw_events(redis_client, handle.run_id) if e["type"] == "run.completed"
    )
    assert completed["data"]["output_ref"]["at"] == "record"
    assert handle.spans()[0].output == value
    assert snapshot(handle).output == value  # the notebook's text/HTML view and widget model
    tree = SpanTree(handle.run_id)  # the dashboard's model, resolved on selection
    tree.extend(handle.events(follow=False))
    (root,) = tree.spans.values()
    assert root.output is None and root.refs["output"]["bytes"] == n + 2
    resolve_values([root], handle.run_id, redis_client)
    assert root.output == value and not root.refs
    assert http.get(f"/runs/{handle.run_id}", timeout=60).json()["output"] == value
    assert http.get(f"/runs/{handle.run_id}/output", timeout=60).json()["output"] == value
    fed = stream_events(http, handle.run_id)
    assert next(e for e in fed if e["type"] == "run.completed")["data"]["output"] == value
    root_done = next(e for e in fed if e["type"] == "span.completed")
    assert root_done["data"]["output"] == value


def test_a_large_step_result_is_stored_once_in_the_journal(
    redis_client: redis.Redis, http: httpx.Client
) -> None:
    ensure_local_worker(force=True)
    n = 8 * MB
    handle = big_step.start(n=n)
    assert handle.result(timeout=60) == n
    size = run_bytes(redis_client, handle.run_id)
    assert size < 1.3 * n, f"{size / MB:.1f} MB for an 8 MB step result"
    done = next(
        e
        for e in raw_events(redis_client, handle.run_id)
        if e["type"] == "span.completed" and e["name"] == "make"
    )
    assert done["data"]["output_ref"] == {
        **done["data"]["output_ref"],
        "at": "journal",
        "field": "big_step/make#0",
    }
    step = next(s for s in handle.spans() if s.name == "make")
    assert step.output == "s" * n
    fed = stream_events(http, handle.run_id)
    shown = next(e for e in fed if e["type"] == "span.completed" and e["name"] == "make")
    assert shown["data"]["output"] == "s" * n


def test_small_values_are_still_carried_by_the_events(redis_client: redis.Redis) -> None:
    ensure_local_worker(force=True)
    handle = big_out.start(n=10)
    assert handle.result(timeout=30) == "c" * 10
    events = raw_events(redis_client, handle.run_id)
    assert next(e for e in events if e["type"] == "run.queued")["data"]["inputs"] == {"n": 10}
    assert next(e for e in events if e["type"] == "run.completed")["data"]["output"] == "c" * 10


def test_a_referenced_input_keeps_its_secret_arguments_masked(
    redis_client: redis.Redis,
) -> None:
    ensure_local_worker(force=True)
    text = "t" * (2 * defaults.EVENT_VALUE_INLINE_BYTES)
    handle = big_secret.start(api_key="sk-very-secret", text=text)
    assert handle.result(timeout=30) == len(text) + 14
    events = raw_events(redis_client, handle.run_id)
    assert events[0]["data"]["inputs_ref"]["mask"] == ["api_key"]
    assert "sk-very-secret" not in orjson.dumps(events).decode()  # not in any preview
    (root,) = handle.spans()
    assert root.inputs == {"text": text, "api_key": "***"}


# --- AIFLOW_MAX_VALUE_BYTES ------------------------------------------------------------


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("AIFLOW_MAX_VALUE_BYTES", "10000")
    af.configure()
    yield 10_000
    monkeypatch.delenv("AIFLOW_MAX_VALUE_BYTES")
    af.configure()


def test_too_large_inputs_raise_at_submit_and_nothing_is_written(
    redis_client: redis.Redis, small_limit: int
) -> None:
    with pytest.raises(af.ValueTooLarge) as info:
        echo_value.start(value="x" * 20_000)
    message = str(info.value)
    assert "inputs of workflow 'echo_value'" in message
    assert "19.5 KiB" in message and "20,012 bytes" in message and "9.8 KiB" in message
    assert "AIFLOW_MAX_VALUE_BYTES=10000" in message
    assert (info.value.size, info.value.limit) == (20_012, small_limit)
    assert isinstance(info.value, ValueError)
    assert not namespace_keys(redis_client)
    # just under the limit goes through
    assert echo_value.run(value="x" * 9_000) == "x" * 9_000


def test_a_too_large_step_result_fails_the_steps_span_with_value_too_large(
    redis_client: redis.Redis, small_limit: int
) -> None:
    ensure_local_worker(force=True)
    handle = big_step.start(n=20_000)
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    assert "ValueTooLarge: output of component 'make' is 19.5 KiB" in str(info.value)
    step = next(s for s in handle.spans() if s.name == "make")
    assert step.status == "failed"
    assert step.error is not None and step.error["type"] == "ValueTooLarge"
    assert "over the limit of 9.8 KiB" in step.error["message"]
    assert not redis_client.hexists(keys.run_journal(handle.run_id), "big_step/make#0")


def test_a_too_large_workflow_output_fails_the_run_clearly(
    redis_client: redis.Redis, small_limit: int
) -> None:
    ensure_local_worker(force=True)
    handle = big_out.start(n=20_000)
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    assert info.value.error["type"] == "ValueTooLarge"
    assert "output of workflow 'big_out' is 19.5 KiB" in info.value.error["message"]
    record = handle.record()
    assert "output" not in record and record["status"] == "failed"
    (root,) = handle.spans()
    assert root.status == "failed" and root.error is not None
    assert root.error["type"] == "ValueTooLarge"


def test_the_limit_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFLOW_MAX_VALUE_BYTES", "16MiB")
    with pytest.raises(af.ConfigError, match="AIFLOW_MAX_VALUE_BYTES"):
        af.configure()
    monkeypatch.delenv("AIFLOW_MAX_VALUE_BYTES")
    assert af.configure().max_value_bytes == defaults.MAX_VALUE_BYTES == 16 * MB


# --- error messages ---------------------------------------------------------------------------


def test_a_huge_error_message_is_cut_in_events_and_kept_whole_once_in_the_record(
    redis_client: redis.Redis, http: httpx.Client
) -> None:
    ensure_local_worker(force=True)
    n = 10 * MB
    handle = big_error.start(n=n)
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=60)
    assert "E" * n in info.value.error["message"]  # the full text, through the handle
    assert len(str(info.value)) < defaults.EVENT_MESSAGE_CHARS + 200  # the exception reads
    size = run_bytes(redis_client, handle.run_id)
    assert size < 1.3 * n, f"{size / MB:.1f} MB for a 10 MB error message"
    failures = [e for e in raw_events(redis_client, handle.run_id) if "error" in e["data"]]
    assert [e["type"] for e in failures] == ["span.failed", "span.failed", "run.failed"]
    for event in failures:
        error = event["data"]["error"]
        assert error["truncated"] is True
        assert len(error["message"]) < defaults.EVENT_MESSAGE_CHARS + 100
        assert len(error["traceback"]) < defaults.EVENT_TRACEBACK_CHARS + 100
        assert "characters cut" in error["message"]
        assert "ValueError" in error["traceback"]
    record_error = handle.record()["error"]
    assert record_error["message"].count("E" * n) == 1
    assert "E" * n not in record_error["traceback"]  # not stored twice
    assert "ValueError: EEEE" in record_error["traceback"]
    doc = http.get(f"/runs/{handle.run_id}", timeout=60).json()
    assert "E" * n in doc["error"]["message"]


def test_too_large_inputs_over_rest_are_413_and_nothing_is_written(
    redis_client: redis.Redis, http: httpx.Client, small_limit: int
) -> None:
    r = http.post("/workflows/echo_value/start", json={"value": "x" * 20_000})
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "value_too_large" and "AIFLOW_MAX_VALUE_BYTES" in body["message"]
    assert not namespace_keys(redis_client)


_failed_once: list[str] = []


@workflow
def big_then_fail(n: int) -> int:
    part = make(n)
    if not _failed_once:
        _failed_once.append("x")
        raise RuntimeError("fails once, after its large step")
    return len(part)


def test_a_resumed_run_replays_a_large_step_by_reference(redis_client: redis.Redis) -> None:
    ensure_local_worker(force=True)
    n = 4 * MB
    handle = big_then_fail.start(n=n)
    with pytest.raises(af.RunFailed):
        handle.result(timeout=30)
    assert af.resume(handle.run_id).result(timeout=30) == n
    replayed = [e for e in raw_events(redis_client, handle.run_id) if e["type"] == "span.replayed"]
    assert len(replayed) == 1 and "output" not in replayed[0]["data"]
    assert replayed[0]["data"]["output_ref"]["field"] == "big_then_fail/make#0"
    step = next(s for s in handle.spans() if s.name == "make")
    assert step.replayed and step.output == "s" * n
    assert run_bytes(redis_client, handle.run_id) < 1.3 * n
