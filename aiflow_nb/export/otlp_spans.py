"""A run's spans as an OTLP ``ExportTraceServiceRequest`` (needs the ``otel`` extra).

One trace per run. Span attributes pass through unchanged, so the OpenTelemetry
GenAI names LLM spans carry (``gen_ai.request.model``, ``gen_ai.usage.*``, ...)
reach the backend as they are; aiflow's own facts go under ``aiflow.*``. Failed
attempts become ``retry`` span events and an error an ``exception`` event. The gaps
between attempts of a resumed run are spans too (``waiting for a worker``, under the
root, ``aiflow.gap`` true, status unset).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

from ..access.gaps import Gap
from ..access.spans import Span
from ..errors import ConfigError
from ..events.status import SpanStatus
from ..serialization import dumps

__all__ = ["build_request", "otel_span_id", "trace_id"]

try:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Status
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtelSpan
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigError("OTLP export needs the otel extra: pip install 'aiflow-nb[otel]'") from exc

_ERROR_STATES = frozenset({SpanStatus.FAILED, SpanStatus.CANCELLED, SpanStatus.INTERRUPTED})


def trace_id(run_id: str) -> bytes:
    """The 16-byte trace id of a run."""
    return hashlib.sha256(f"trace:{run_id}".encode()).digest()[:16]


def otel_span_id(run_id: str, span_id: str) -> bytes:
    """The 8-byte OTLP span id of one span of a run."""
    return hashlib.sha256(f"span:{run_id}:{span_id}".encode()).digest()[:8]


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, list | tuple) and all(isinstance(x, str | bool | int | float) for x in v):
        out = AnyValue()
        out.array_value.values.extend(_value(x) for x in v)
        return out
    return AnyValue(string_value=dumps(v).decode())


def _attrs(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items() if v is not None]


def _nanos(ts: float) -> int:
    return int(ts * 1_000_000_000)


def _span(run_id: str, workflow: str, span: Span, now: float) -> OtelSpan:
    start = span.start if span.start is not None else now
    end = span.end if span.end is not None else now
    facts = {
        "aiflow.run_id": run_id,
        "aiflow.workflow": workflow,
        "aiflow.span.status": span.status,
        "aiflow.step_key": span.key,
        "aiflow.attempts": span.attempts,
        "aiflow.cached": span.cached,
        "aiflow.replayed": span.replayed,
        "aiflow.fallback": span.fallback,
    }
    out = OtelSpan(
        trace_id=trace_id(run_id),
        span_id=otel_span_id(run_id, span.span_id),
        name=span.name,
        kind=OtelSpan.SPAN_KIND_CLIENT
        if "gen_ai.request.model" in span.attributes
        else OtelSpan.SPAN_KIND_INTERNAL,
        start_time_unix_nano=_nanos(start),
        end_time_unix_nano=_nanos(max(end, start)),
        attributes=_attrs({**facts, **span.attributes}),
    )
    if span.parent_id:
        out.parent_span_id = otel_span_id(run_id, span.parent_id)
    for r in span.retries:
        err = r.get("error") or {}
        out.events.add(
            name="retry",
            time_unix_nano=_nanos(start),
            attributes=_attrs(
                {
                    "aiflow.attempt": r.get("attempt"),
                    "error.type": err.get("type"),
                    "exception.message": err.get("message"),
                    "aiflow.wait_s": r.get("wait"),
                }
            ),
        )
    if span.error:
        out.events.add(
            name="exception",
            time_unix_nano=_nanos(end),
            attributes=_attrs(
                {
                    "exception.type": span.error.get("type"),
                    "exception.message": span.error.get("message"),
                    "exception.stacktrace": span.error.get("traceback"),
                }
            ),
        )
    if span.status in _ERROR_STATES:
        message = (
            f"{(span.error or {}).get('type', span.status)}: "
            f"{(span.error or {}).get('message', '')}"
        )
        out.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=message))
    elif span.status == SpanStatus.COMPLETED:
        out.status.CopyFrom(Status(code=Status.STATUS_CODE_OK))
    return out


def _gap(run_id: str, workflow: str, gap: Gap, root: str | None, now: float) -> OtelSpan:
    """A gap between two attempts as a span under the root (status unset: not an error)."""
    facts = {
        "aiflow.run_id": run_id,
        "aiflow.workflow": workflow,
        "aiflow.span.status": SpanStatus.WAITING,
        "aiflow.gap": True,
        "aiflow.gap.after_failure": gap.failed,
        "aiflow.gap.seconds": gap.duration(now),
        "aiflow.resumed_attempt": gap.attempt,
    }
    out = OtelSpan(
        trace_id=trace_id(run_id),
        span_id=otel_span_id(run_id, gap.key),
        name=gap.label,
        kind=OtelSpan.SPAN_KIND_INTERNAL,
        start_time_unix_nano=_nanos(gap.start),
        end_time_unix_nano=_nanos(gap.end if gap.end is not None else now),
        attributes=_attrs(facts),
    )
    if root is not None:
        out.parent_span_id = otel_span_id(run_id, root)
    return out


def build_request(
    run_id: str,
    workflow: str,
    spans: list[Span],
    service_name: str = "aiflow-nb",
    now: float | None = None,
    gaps: Iterable[Gap] = (),
) -> ExportTraceServiceRequest:
    """The OTLP request carrying every span of one run (running ones end at ``now``),
    then one span per gap between two of its attempts (``gaps``)."""
    from ..config import namespace
    from ..version import __version__

    now = time.time() if now is None else now
    resource_spans = ResourceSpans()
    resource_spans.resource.attributes.extend(
        _attrs({"service.name": service_name, "aiflow.namespace": namespace()})
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name, scope.scope.version = "aiflow_nb", __version__
    scope.spans.extend(_span(run_id, workflow, s, now) for s in spans)
    root = next((s.span_id for s in spans if s.parent_id is None), None)
    scope.spans.extend(_gap(run_id, workflow, g, root, now) for g in gaps)
    request = ExportTraceServiceRequest()
    request.resource_spans.append(resource_spans)
    return request
