"""Hostile values in the Python API: a result that cannot be stored or an exception whose
``__str__`` raises ends its span ``failed`` with a readable error of the right type, and
each lossy JSON round trip is either refused at the call site or behaves exactly as
docs/values.md says. Real Redis, the real in-process worker."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import uuid
from typing import Any

import numpy
import pytest
import redis

import aiflow_nb as af
from aiflow_nb import component, keys, workflow
from aiflow_nb.ops.local import ensure_local_worker

from support.helpers import namespace_keys


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Hostile(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ of Hostile raised")


@component
def returns_object() -> object:
    return object()


@component
async def returns_object_async() -> object:
    await asyncio.sleep(0)
    return object()


@workflow
def wf_object() -> object:
    return returns_object()


@workflow
async def wf_object_async() -> object:
    return await returns_object_async()


@component(retry=af.RetryPolicy(attempts=2, initial=0.01))
def raises_hostile() -> None:
    raise Hostile()


@workflow
def wf_hostile() -> None:
    raises_hostile()


@workflow
def wf_hostile_direct() -> None:
    raise Hostile()


@component
def hands_back(value: Any) -> Any:
    return value


@workflow
def wf_hand_back(value: Any) -> Any:
    return hands_back(value)


def _assert_no_open_spans(handle: af.RunHandle) -> None:
    open_spans = [s.name for s in handle.spans() if s.status == "running" or s.end is None]
    assert not open_spans, f"spans left without an end: {open_spans}"


@pytest.mark.parametrize(
    ("wf", "step"), [(wf_object, "returns_object"), (wf_object_async, "returns_object_async")]
)
def test_an_unserialisable_result_ends_its_span_failed_with_serialization_error(
    wf: af.Workflow[Any, Any], step: str
) -> None:
    ensure_local_worker(force=True)
    handle = wf.start()
    with pytest.raises(af.RunFailed):
        handle.result(timeout=30)
    _assert_no_open_spans(handle)
    span = next(s for s in handle.spans() if s.name == step)
    assert span.status == "failed" and span.error is not None
    assert span.error["type"] == "SerializationError"
    assert f"output of component {step!r} is not JSON-serialisable" in span.error["message"]
    assert "object" in span.error["message"]


@component
def takes_anything(value: Any) -> str:
    return type(value).__name__


@workflow
def wf_object_argument() -> str:
    return takes_anything(object())


def test_an_unserialisable_argument_fails_the_run_naming_the_component() -> None:
    ensure_local_worker(force=True)
    handle = wf_object_argument.start()
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    assert info.value.error is not None
    message = info.value.error["message"]
    assert "arguments of component 'takes_anything' is not JSON-serialisable" in message
    _assert_no_open_spans(handle)


def test_an_exception_whose_str_raises_ends_its_span_failed_and_reads() -> None:
    ensure_local_worker(force=True)
    handle = wf_hostile.start()
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    _assert_no_open_spans(handle)
    span = next(s for s in handle.spans() if s.name == "raises_hostile")
    assert span.status == "failed" and span.error is not None
    assert span.error["type"] == "ComponentFailed" and span.error["cause"] == "Hostile"
    assert (
        "after 2 attempt(s): Hostile: <Hostile.__str__ raised RuntimeError>"
        in (span.error["message"])
    )
    assert "Hostile" in span.error["traceback"]
    assert span.retries and span.retries[0]["error"]["type"] == "Hostile"
    assert info.value.error["cause"] == "Hostile"  # the run records the step's error
    assert "__str__ of Hostile raised" not in info.value.error["message"]


def test_a_hostile_exception_raised_by_the_workflow_itself_fails_the_run_readably() -> None:
    ensure_local_worker(force=True)
    handle = wf_hostile_direct.start()
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    _assert_no_open_spans(handle)
    assert info.value.error["cause"] == "Hostile"
    assert "<Hostile.__str__ raised RuntimeError>" in info.value.error["message"]


NOT_UTF8 = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
"""A file name read from a non-UTF-8 file system (``os.listdir``): holds a lone surrogate."""


@component
def opens_not_utf8() -> None:
    raise ValueError(f"cannot parse {NOT_UTF8}")


@workflow
def wf_not_utf8_step() -> None:
    opens_not_utf8()


@workflow
def wf_not_utf8_direct() -> None:
    raise ValueError(f"cannot parse {NOT_UTF8}")


@pytest.mark.parametrize("wf", [wf_not_utf8_step, wf_not_utf8_direct])
def test_an_error_message_holding_a_lone_surrogate_fails_the_run_with_that_error(
    wf: af.Workflow[Any, Any],
) -> None:
    """It failed the run with 'SerializationError: span.failed event data is not
    JSON-serialisable', the real error lost."""
    ensure_local_worker(force=True)
    handle = wf.start()
    with pytest.raises(af.RunFailed) as info:
        handle.result(timeout=30)
    _assert_no_open_spans(handle)
    error = info.value.error
    assert error["type"] == "ValueError" or error["cause"] == "ValueError"
    assert "caf\\udce9.txt" in error["message"]  # the byte shown as its escape
    assert "caf\\udce9.txt" in error["traceback"]
    failed = [s for s in handle.spans() if s.status == "failed"]
    assert failed and all("caf\\udce9.txt" in (s.error or {})["message"] for s in failed)


# --- lossy JSON round trips: refused at the call site ---------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"score": float("nan")}, "NaN or infinite float at ['value']['score']"),
        ([1.0, float("inf")], "NaN or infinite float at ['value'][1]"),
        ({1: "one"}, "dict key 1 (int) is not a str"),
        ({"n": 2**70}, "Integer exceeds 64-bit range) at ['value']['n']"),
        ({"s": {1, 2}}, "set (Type is not JSON serializable: set) at ['value']['s']"),
    ],
)
def test_lossy_inputs_are_refused_at_start_and_nothing_is_written(
    redis_client: redis.Redis, value: object, says: str
) -> None:
    with pytest.raises(af.SerializationError) as info:
        wf_hand_back.start(value=value)
    assert "inputs of workflow 'wf_hand_back'" in str(info.value)
    assert says in str(info.value)
    assert not namespace_keys(redis_client)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (float("nan"), "holds a NaN or infinite float"),
        ({"x": [float("-inf")]}, "holds a NaN or infinite float at ['x'][0]"),
        ({(1, 2): "pair"}, "dict key (1, 2) (tuple) is not a str"),
        ([2**64], "Integer exceeds 64-bit range) at [0]"),
        ({"a": numpy.array([1.0, numpy.nan])}, "holds a NaN or infinite float at ['a']"),
        (Point(1, float("nan")), "holds a NaN or infinite float at .y"),
    ],
)
def test_lossy_step_results_fail_the_steps_span(
    redis_client: redis.Redis, value: object, says: str
) -> None:
    @component
    def lossy() -> object:
        return value

    @workflow
    def wf_lossy() -> object:
        return lossy()

    ensure_local_worker(force=True)
    handle = wf_lossy.start()
    with pytest.raises(af.RunFailed):
        handle.result(timeout=30)
    span = next(s for s in handle.spans() if s.name == "lossy")
    assert span.status == "failed" and span.error is not None
    assert span.error["type"] == "SerializationError" and says in span.error["message"]
    assert not redis_client.hexists(keys.run_journal(handle.run_id), "wf_lossy/lossy#0")


# --- lossy JSON round trips: documented (docs/values.md) -----------------------------------


def test_documented_round_trips_are_what_the_first_run_and_the_result_see() -> None:
    when = datetime.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=datetime.UTC)
    seen: list[Any] = []

    @component
    def gives() -> object:
        return {
            "pair": (1, 2),
            "when": when,
            "day": when.date(),
            "big": 2**63 + 5,
            "neg": -(2**63),
            "none": None,
            "id": uuid.UUID(int=7),
            "color": Color.RED,
            "point": Point(1, 2.5),
            "array": numpy.array([[1, 2], [3, 4]]),
            "scalar": numpy.float64(0.5),
        }

    @workflow
    def wf_gives() -> object:
        got = gives()
        seen.append(got)
        return got

    ensure_local_worker(force=True)
    expected = {
        "pair": [1, 2],  # tuples come back as lists
        "when": "2024-05-01T12:30:15.123456+00:00",  # datetimes as ISO 8601 strings
        "day": "2024-05-01",
        "big": 2**63 + 5,  # ints up to 2**64 - 1 (and down to -2**63) round-trip exactly
        "neg": -(2**63),
        "none": None,  # a real None is not mistaken for a NaN
        "id": "00000000-0000-0000-0000-000000000007",  # UUIDs as str
        "color": "red",  # enums as their value
        "point": {"x": 1, "y": 2.5},  # dataclasses as dicts
        "array": [[1, 2], [3, 4]],  # numpy arrays as lists
        "scalar": 0.5,
    }
    assert wf_gives.run() == expected
    assert seen == [expected]  # the caller in the run sees the round trip, like a replay


# --- error documents ------------------------------------------------------------------------


def test_error_documents_keep_the_message_once_and_the_chain_readable() -> None:
    from aiflow_nb import defaults
    from aiflow_nb.errors import error_document, event_error

    long = "L" * (3 * defaults.EVENT_MESSAGE_CHARS)
    try:
        try:
            raise KeyError(long)
        except KeyError as inner:
            raise ExceptionGroup("group", [ValueError(long), Hostile()]) from inner
    except ExceptionGroup as exc:
        doc = error_document(exc)
    assert doc["type"] == "ExceptionGroup" and doc["message"].startswith("group")
    tb = doc["traceback"]
    assert "KeyError: 'LLL" in tb and "direct cause of the following exception" in tb
    assert "ValueError: LLL" in tb and "<exception str() failed>" in tb
    assert long not in tb and tb.count("characters cut") == 2
    short = event_error({**doc, "message": long})
    assert short["truncated"] is True and len(short["message"]) < len(long)
    assert event_error(doc) is doc  # nothing to cut: the same document
