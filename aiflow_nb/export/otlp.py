"""``OtlpExporter``: POST runs' spans to an OTLP/HTTP receiver (``/v1/traces``, protobuf).

Example::

    OtlpExporter("http://127.0.0.1:4318").export_run(run_id)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import redis

from .. import defaults
from ..access.handle import RunHandle
from ..access.runs import list_runs
from ..errors import ExportError
from ..events.status import TERMINAL
from ..store import sync_redis
from ..trace.tree import SpanTree
from .otlp_spans import build_request

__all__ = ["ExportError", "OtlpExporter", "traces_url"]


def traces_url(endpoint: str) -> str:
    """The traces URL of an OTLP/HTTP endpoint (``/v1/traces`` appended unless present)."""
    if not endpoint.startswith(("http://", "https://")):
        raise ExportError(f"OTLP endpoint must be an http(s) URL, got {endpoint!r}")
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


class OtlpExporter:
    """Sends one request per run; ``follow()`` exports runs as they end."""

    def __init__(
        self,
        endpoint: str,
        service_name: str = "aiflow-nb",
        timeout: float = defaults.EXPORT_TIMEOUT,
        client: redis.Redis | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = traces_url(endpoint)
        self.service_name = service_name
        self.timeout = timeout
        self._redis = client
        self._sleep = sleep

    def export_run(self, run_id: str, wait: bool = False) -> int:
        """Export every span of ``run_id`` (after it ends, if ``wait``); how many spans."""
        handle = RunHandle(run_id, self._redis)
        if wait:
            handle.wait()
        record = handle.record()
        # SpanTree, not handle.spans(): a span a crash cut off ends "interrupted" at the
        # run's end, instead of "running" until the moment of export.
        tree = SpanTree.from_events(handle.events(follow=False), run_id)
        spans = list(tree.spans.values())
        request = build_request(
            run_id, str(record["workflow"]), spans, self.service_name, gaps=tree.gaps
        )
        self.send(request.SerializeToString())
        return len(spans)

    def send(self, body: bytes) -> None:
        """POST one encoded ``ExportTraceServiceRequest``; ``ExportError`` unless 2xx."""
        try:
            reply = httpx.post(
                self.url,
                content=body,
                timeout=self.timeout,
                headers={"Content-Type": "application/x-protobuf"},
            )
        except httpx.HTTPError as exc:
            raise ExportError(f"cannot reach OTLP endpoint {self.url}: {exc}") from exc
        if reply.status_code // 100 != 2:
            raise ExportError(
                f"OTLP endpoint {self.url} answered {reply.status_code}: {reply.text[:200]}"
            )

    def follow(
        self, poll: float = defaults.EXPORT_POLL_INTERVAL, until: Callable[[], bool] = lambda: False
    ) -> Iterator[tuple[str, int]]:
        """Export each run that ends from now on; yields (run id, spans) per export."""
        client = self._redis or sync_redis()
        seen = {
            r["run_id"] for r in list_runs(limit=10_000, client=client) if r["status"] in TERMINAL
        }
        while not until():
            for rec in list_runs(limit=defaults.EXPORT_FOLLOW_WINDOW, client=client):
                if rec["status"] in TERMINAL and rec["run_id"] not in seen:
                    seen.add(rec["run_id"])
                    yield rec["run_id"], self.export_run(rec["run_id"])
            self._sleep(poll)
