"""Helpers of the Redis outage tests: a redis-server of one test that is SIGKILLed and
restarted on the same AOF (the ``private_redis`` fixture: import ``private_redis_fixture``
into the test module), and an SSE client that reconnects with ``Last-Event-ID``."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import aiflow_nb
from aiflow_nb.events.status import TERMINAL
from aiflow_nb.store.connection import reset
from aiflow_nb.store.embedded import EmbeddedRedis

from .api import KEY


class PrivateRedis:
    """The embedded binary on a unix socket of its own, ``appendonly yes`` (its
    ``appendfsync`` is the default, ``everysec``); ``kill()`` is SIGKILL, ``restart()``
    starts it again on the same directory, so on the same AOF."""

    def __init__(self, directory: Path) -> None:
        self.server = EmbeddedRedis(directory)
        self.proc: subprocess.Popen[bytes] = self.server.spawn()
        self.back_at = 0.0
        """``time.time()`` when the restarted server was ready (its AOF loaded)."""

    @property
    def url(self) -> str:
        return self.server.url

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> None:
        self.proc = self.server.spawn()
        self.back_at = self._ready_at()

    def _ready_at(self) -> float:
        """When the server last said it was ready to accept connections (its log, in ms)."""
        log = (self.server.directory / "redis.log").read_text().splitlines()
        line = next(x for x in reversed(log) if "ready to accept connections" in x.lower())
        day, ms = line.split(" ", 1)[1].split(" * ")[0].rsplit(".", 1)
        return time.mktime(time.strptime(day, "%d %b %Y %H:%M:%S")) + int(ms) / 1000

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(name="private_redis")
def private_redis_fixture(
    tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PrivateRedis]:
    """A ``PrivateRedis`` that this test's clients and worker processes use
    (``REDIS_URL``)."""
    server = PrivateRedis(tmp_path / "redis")
    monkeypatch.setenv("REDIS_URL", server.url)
    aiflow_nb.configure()
    try:
        yield server
    finally:
        server.stop()
        reset()  # close the clients of this server


def sse_messages(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """SSE messages (field -> value; ``comment`` for a comment line) from a line iterator."""
    msg: dict[str, str] = {}
    for line in lines:
        if line == "":
            if msg:
                yield msg
            msg = {}
        elif line.startswith(":"):
            msg["comment"] = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            msg[name] = value.removeprefix(" ")


class SseFollower(threading.Thread):
    """Follows ``/runs/{id}/events`` until the terminal event: after a stream ends early
    (an ``interrupted`` message, a cut connection) it reconnects with ``Last-Event-ID``,
    retrying while the API answers 503. Keeps every event id and document, in order."""

    def __init__(self, base_url: str, run_id: str, timeout: float = 90.0) -> None:
        super().__init__(daemon=True)
        self.base_url, self.run_id, self.timeout = base_url, run_id, timeout
        self.ids: list[str] = []
        self.docs: list[dict[str, Any]] = []
        self.interrupted: list[dict[str, Any]] = []
        self.unavailable = 0
        self.ended = False

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        auth = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=self.base_url, headers=auth, timeout=30) as client:
            while not self.ended and time.monotonic() < deadline:
                try:
                    self._once(client)
                except httpx.TransportError:
                    time.sleep(0.1)

    def _once(self, client: httpx.Client) -> None:
        headers = {"Last-Event-ID": self.ids[-1]} if self.ids else {}
        with client.stream("GET", f"/runs/{self.run_id}/events", headers=headers) as r:
            if r.status_code == 503:
                self.unavailable += 1
                time.sleep(0.1)
                return
            if r.status_code == 204:  # resumed after the last event of an ended run
                self.ended = True
                return
            r.raise_for_status()
            for msg in sse_messages(r.iter_lines()):
                if msg.get("event") == "interrupted":
                    self.interrupted.append(json.loads(msg["data"]))
                elif "id" in msg:
                    self.ids.append(msg["id"])
                    doc = json.loads(msg["data"])
                    self.docs.append(doc)
                    if doc["type"].removeprefix("run.") in TERMINAL:
                        self.ended = True
