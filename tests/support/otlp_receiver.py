"""A real OTLP/HTTP trace receiver on loopback: decodes each POST /v1/traces body as an
``ExportTraceServiceRequest`` (opentelemetry-proto) and keeps it."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .helpers import LoopbackServer, QuietHandler


class Receiver(LoopbackServer):
    """``with Receiver() as rx:`` … ``rx.endpoint``, ``rx.requests``, ``rx.spans()``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []
        self.received = threading.Condition()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.received:
                    receiver.requests.append(request)
                    receiver.content_types.append(self.headers["Content-Type"])
                    receiver.received.notify_all()
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        super().__init__(Handler)
        self.endpoint = self.base_url

    def wait(self, n: int, timeout: float = 20.0) -> None:
        with self.received:
            if not self.received.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"{len(self.requests)} OTLP requests, expected {n}")

    def spans(self, index: int = -1) -> list[Any]:
        req = self.requests[index]
        return [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
