"""Traces out of aiflow-nb: OpenTelemetry (OTLP/HTTP protobuf), an optional extra (``otel``)."""

from __future__ import annotations

__all__: list[str] = []
