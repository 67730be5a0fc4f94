"""Helpers of the REST API tests: workflows, a real uvicorn server in a thread, an SSE
parser. Fixtures live in the test modules that use them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from typing_extensions import TypedDict

from aiflow_nb import component, progress, workflow
from aiflow_nb.api import ServerThread, create_app

KEY = "test-key-0123456789"


class Item(TypedDict):
    sku: str
    qty: int


@component
def double(x: int) -> int:
    return 2 * x


@workflow
def api_add(a: int, b: int = 1) -> int:
    """Add two numbers (the one-step workflow of the API tests)."""
    return double(a + b) // 2


@workflow
def api_order(items: list[Item], note: str | None = None) -> dict[str, int]:
    """Count the quantity per sku (nested pydantic input)."""
    out: dict[str, int] = {}
    for item in items:
        out[item["sku"]] = out.get(item["sku"], 0) + item["qty"]
    return out


@workflow
async def api_ticker(n: int, delay: float = 0.05) -> int:
    """Emit ``n`` progress events, ``delay`` seconds apart."""
    for i in range(n):
        await asyncio.sleep(delay)
        progress(i + 1, n, f"tick {i + 1}")
    return n


@workflow
def api_fail(message: str) -> None:
    """Always fails."""
    raise RuntimeError(message)


@workflow(secret_args=["api_token"])
def api_secret(user: str, api_token: str) -> str:
    """Echoes its secret into the output and an error-prone log line."""
    progress(1, 1, f"using {api_token}")
    return f"{user}:{api_token}"


@contextmanager
def serve(**options: Any) -> Iterator[ServerThread]:
    """A real uvicorn server on a free loopback port, for one test."""
    server = ServerThread(create_app(**options)).start()
    try:
        yield server
    finally:
        server.stop()


def client(server: ServerThread, key: str | None = KEY, **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30, **kw)


@contextmanager
def served_client(**options: Any) -> Iterator[httpx.Client]:
    """A ``KEY``-authorised client of a fresh real server (``serve(**options)``)."""
    with serve(**options) as server, client(server) as c:
        yield c


def parse_sse(text: str) -> list[dict[str, Any]]:
    """SSE messages as dicts with the fields seen (``id``, ``data``, ``comment``, ``retry``)."""
    messages = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        msg: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                msg["comment"] = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            msg[name] = value.removeprefix(" ")
        messages.append(msg)
    return messages


def wait_status(c: httpx.Client, run_id: str, status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = c.get(f"/runs/{run_id}").json()
        if doc["status"] == status or time.monotonic() > deadline:
            return doc
        time.sleep(0.02)
