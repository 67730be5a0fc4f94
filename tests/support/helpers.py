"""Small helpers shared by the test helper modules: polling until a condition holds, and a
real HTTP server on loopback served from a thread (the base of the tests' receivers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import redis


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    what: str | Callable[[], str] = "condition",
    every: float = 0.02,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that. ``what`` (or
    ``what()``, evaluated at the timeout) names the condition in the error."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            name = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {name}")
        time.sleep(every)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer:
    """``with Sub(...) as srv:`` serves ``handler`` on 127.0.0.1 (a free port) in a thread;
    ``srv.base_url`` is its address."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def namespace_keys(r: redis.Redis) -> set[str]:
    """Every key of the namespace in force (``keys.patterns``)."""
    from aiflow_nb import keys

    return {
        k.decode() for pattern in keys.patterns() for k in r.scan_iter(match=pattern, count=1000)
    }
