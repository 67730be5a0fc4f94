"""OTLP export against a real OTLP/HTTP receiver on loopback (protobuf over HTTP)."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

import aiflow_nb
from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.cli import cli
from aiflow_nb.errors import ExportError
from aiflow_nb.events.model import FIELD, make_payload
from aiflow_nb.export.otlp import OtlpExporter, traces_url
from aiflow_nb.export.otlp_spans import trace_id
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis

from support.otlp_receiver import Receiver
from support.trace import MODEL, failing, fan_out, traced


def _attrs(span: Span) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in span.attributes:
        out[kv.key] = getattr(kv.value, kv.value.WhichOneof("value"))
    return out


def test_export_sends_every_span_with_parentage_and_gen_ai_attributes() -> None:
    handle = traced.start(tag="otel", fan=2)
    handle.result(timeout=20)
    with Receiver() as rx:
        assert OtlpExporter(rx.endpoint).export_run(handle.run_id) == 6
    assert rx.content_types == ["application/x-protobuf"]
    resource = rx.requests[0].resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}[
        "service.name"
    ] == "aiflow-nb"
    spans = {
        s.name if s.name != "leaf" else f"leaf{_attrs(s)['aiflow.step_key']}": s for s in rx.spans()
    }
    root = spans.pop("traced")
    assert root.parent_span_id == b"" and root.trace_id == trace_id(handle.run_id)
    assert all(s.parent_span_id == root.span_id for s in spans.values())
    assert all(s.trace_id == root.trace_id for s in spans.values())
    assert len({s.span_id for s in rx.spans()}) == 6
    chat = spans["chat"]
    attrs = _attrs(chat)
    assert attrs["gen_ai.request.model"] == MODEL
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (7, 3)
    assert attrs["aiflow.cost_usd"] == pytest.approx(0.0021)
    assert chat.kind == Span.SPAN_KIND_CLIENT and root.kind == Span.SPAN_KIND_INTERNAL
    assert chat.end_time_unix_nano > chat.start_time_unix_nano > 0
    flaky = spans["flaky"]
    assert _attrs(flaky)["aiflow.attempts"] == 2
    assert [e.name for e in flaky.events] == ["retry"]
    assert flaky.status.code == Status.STATUS_CODE_OK


def test_failed_span_exports_error_status_and_exception_event() -> None:
    handle = failing.start(x=5)
    with pytest.raises(aiflow_nb.RunFailed):
        handle.result(timeout=10)
    with Receiver() as rx:
        OtlpExporter(rx.endpoint + "/v1/traces").export_run(handle.run_id)
    boom = next(s for s in rx.spans() if s.name == "boom")
    assert boom.status.code == Status.STATUS_CODE_ERROR and "bad value 5" in boom.status.message
    event = next(e for e in boom.events if e.name == "exception")
    ev = {kv.key: kv.value.string_value for kv in event.attributes}
    assert ev["exception.type"] == "ComponentFailed" and "Traceback" in ev["exception.stacktrace"]


def test_spans_a_crash_cut_off_export_interrupted_ending_at_the_run_end() -> None:
    # The events a worker killed mid-step leaves, then recovery's run.failed (written here
    # as ops/recovery writes them; no worker runs, so the submitted run stays queued).
    handle = RunHandle(submit(fan_out.name, fan_out.bind_inputs({"n": 1})))
    stream = keys.run_events(handle.run_id)
    for type_, span, parent, name in (
        ("run.started", None, None, fan_out.name),
        ("span.started", "root", None, fan_out.name),
        ("span.started", "s1", "root", "leaf"),
        ("run.failed", None, None, fan_out.name),
    ):
        sync_redis().xadd(
            stream,
            {FIELD: make_payload(type_, handle.run_id, span_id=span, parent_id=parent, name=name)},
        )
    ended = time.time()
    time.sleep(0.05)
    with Receiver() as rx:
        assert OtlpExporter(rx.endpoint).export_run(handle.run_id) == 2
    for span in rx.spans():
        assert _attrs(span)["aiflow.span.status"] == "interrupted"
        assert span.status.code == Status.STATUS_CODE_ERROR
        assert span.end_time_unix_nano <= ended * 1e9  # not the moment of export


def test_cli_exports_one_run_and_follow_exports_runs_as_they_end() -> None:
    done = traced.start(tag="cli", fan=1)
    done.result(timeout=20)
    with Receiver() as rx:
        result = CliRunner().invoke(cli, ["export", "otlp", "--endpoint", rx.endpoint, done.run_id])
        assert result.exit_code == 0, result.output
        assert f"exported 5 spans of run {done.run_id}" in result.output
        assert len(rx.requests) == 1
        stop = threading.Event()
        exported: list[tuple[str, int]] = []
        follower = OtlpExporter(rx.endpoint, service_name="followed")
        thread = threading.Thread(
            target=lambda: exported.extend(follower.follow(poll=0.05, until=stop.is_set)),
            daemon=True,
        )
        thread.start()
        later = traced.start(tag="later", fan=1)
        later.result(timeout=20)
        rx.wait(2)
        stop.set()
        thread.join(5)
    assert exported == [(later.run_id, 5)]  # the run that ended before --follow is skipped
    assert {s.trace_id for s in rx.spans(1)} == {trace_id(later.run_id)}


def test_export_errors_are_clear() -> None:
    handle = traced.start(tag="err", fan=1)
    handle.result(timeout=20)
    with pytest.raises(ExportError, match="must be an http"):
        traces_url("127.0.0.1:4318")
    with Receiver(status=503) as rx:
        with pytest.raises(ExportError, match="answered 503"):
            OtlpExporter(rx.endpoint).export_run(handle.run_id)
        dead = rx.endpoint
    with pytest.raises(ExportError, match="cannot reach"):
        OtlpExporter(dead, timeout=2).export_run(handle.run_id)
    with pytest.raises(aiflow_nb.RunNotFound):
        OtlpExporter(dead).export_run("no-such-run")
    result = CliRunner().invoke(cli, ["export", "otlp", "--endpoint", dead])
    assert result.exit_code == 2 and "give a RUN_ID, or --follow" in result.output
