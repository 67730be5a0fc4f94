"""REST API benchmarks (issue 4). The API server and a worker run as subprocesses (as in
production: they only meet in Redis); the clients run in this process.

1. 100 concurrent SSE clients follow one run that emits 50 events 20 ms apart: latency
   from the event's timestamp (taken when the worker emits it) to its receipt by the
   client, p50 and p99 (each the median over 3 such runs, as the machine is shared).
   Target: p99 <= 25 ms. Baseline, same run: 100 followers reading the Redis stream
   directly (``aread_events``) in this process, no HTTP.
2. ``POST /workflows/one_step/run`` (submit, wait, answer) vs ``one_step.run()`` called in
   this process against the same worker: median wall time and ratio.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from ._common import Figure, private_redis

CLIENTS = 100
EVENTS = 50
INTERVAL = 0.02
CONNECT_TIMEOUT = 60.0
ROUND_TRIPS = 200
TRIALS = 3
ROOT = Path(__file__).resolve().parent.parent

SERVER = """
from aiflow_nb.api import create_app, serve
serve(create_app(["benchmarks._api_flows"]), port={port}, log_level="warning")
"""
WORKER = """
import asyncio, benchmarks._api_flows
from aiflow_nb.ops.worker import Worker
asyncio.run(Worker().serve())
"""


def _spawn(code: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIFLOW_LOCAL_WORKER": "0"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)


def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").json().get("workers"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"API at {url} with a live worker did not come up")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _median_pct(trials: list[list[float]], q: float) -> float:
    """Milliseconds: the median over trials of each trial's ``q`` quantile."""
    return statistics.median(_pct(t, q) for t in trials) * 1e3


async def _sse_client(
    host: str,
    port: int,
    run_id: str,
    out: list[float],
    connected: asyncio.Event,
    counter: list[int],
) -> None:
    """A minimal SSE client on a raw socket (so the harness adds little latency)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /runs/{run_id}/events HTTP/1.1\r\nHost: {host}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if not line.startswith(b"data: "):
                continue
            now = time.time()
            doc = orjson.loads(line[6:])
            if doc["type"] == "run.queued":
                counter[0] += 1
                if counter[0] == CLIENTS:
                    connected.set()
            elif doc["type"] == "progress":
                out.append(now - doc["ts"])
            elif doc["type"] in ("run.completed", "run.failed"):
                return
    finally:
        writer.close()


def _open(gate: str) -> None:
    from aiflow_nb.store import sync_redis
    from benchmarks._api_flows import gate_key

    sync_redis().set(gate_key(gate), 1)


async def _follow_http(url: str, run_id: str, gate: str) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    out: list[float] = []
    connected, counter = asyncio.Event(), [0]
    tasks = [
        asyncio.create_task(_sse_client(host, int(port), run_id, out, connected, counter))
        for _ in range(CLIENTS)
    ]
    await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT)
    _open(gate)  # all connected: the run may emit
    await asyncio.gather(*tasks)
    return out


async def _follow_redis(run_id: str, gate: str) -> list[float]:
    from aiflow_nb.events.reader import aread_events

    out: list[float] = []
    started = [0]

    async def one() -> None:
        async for event in aread_events(run_id):
            if event.type == "run.queued":
                started[0] += 1
                if started[0] == CLIENTS:
                    _open(gate)
            elif event.type == "progress":
                out.append(time.time() - event.ts)

    await asyncio.gather(*(one() for _ in range(CLIENTS)))
    return out


def _latencies(http: httpx.Client, url: str, via_http: bool) -> list[float]:
    gate = secrets.token_hex(4)
    run_id = http.post(
        "/workflows/pulse/start", json={"n": EVENTS, "interval": INTERVAL, "gate": gate}
    ).json()["run_id"]
    follow = _follow_http(url, run_id, gate) if via_http else _follow_redis(run_id, gate)
    samples = asyncio.run(follow)
    assert len(samples) == CLIENTS * EVENTS, len(samples)
    return samples


def _round_trips(http: httpx.Client) -> tuple[float, float]:
    from benchmarks._api_flows import one_step

    api, local = [], []
    for i in range(ROUND_TRIPS):  # interleaved, so drift hits both alike
        t0 = time.perf_counter()
        body = http.post("/workflows/one_step/run", json={"x": i}).json()
        api.append(time.perf_counter() - t0)
        assert body["output"] == i + 1, body
        t0 = time.perf_counter()
        assert one_step.run(x=i) == i + 1
        local.append(time.perf_counter() - t0)
    return statistics.median(api), statistics.median(local)


def main() -> list[Figure]:
    from aiflow_nb.api.server import free_port

    load = os.getloadavg()[0]
    with private_redis():
        os.environ["AIFLOW_LOCAL_WORKER"] = "0"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        procs = [_spawn(SERVER.format(port=port)), _spawn(WORKER)]
        try:
            _wait_ready(url)
            with httpx.Client(base_url=url, timeout=60) as http:
                http.post("/workflows/one_step/run", json={"x": 0})  # warm up
                base = [_latencies(http, url, via_http=False) for _ in range(TRIALS)]
                sse = [_latencies(http, url, via_http=True) for _ in range(TRIALS)]
                api, local = _round_trips(http)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            os.environ.pop("AIFLOW_LOCAL_WORKER", None)
    p50, p99 = _median_pct(sse, 0.50), _median_pct(sse, 0.99)
    b50, b99 = _median_pct(base, 0.50), _median_pct(base, 0.99)
    return [
        Figure(f"SSE latency, {CLIENTS} clients, p50", p50, "ms", b50, "Redis followers p50"),
        Figure(
            f"SSE latency, {CLIENTS} clients, p99",
            p99,
            "ms",
            b99,
            "Redis followers p99",
            "<= 25 ms",
            p99 <= 25,
        ),
        Figure(
            "POST /run one-step workflow, median", api * 1e3, "ms", local * 1e3, "in-process .run()"
        ),
        Figure("  (machine load average at start, 1 min)", load, f"on {os.cpu_count()} cores"),
    ]
