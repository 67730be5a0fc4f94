"""``REDIS_URL=redis+cluster://...``: redis-py's cluster clients, sharded pub/sub, and a
cluster's outages as outages (``RedisUnavailable``, 503), against a real 3-master Redis
Cluster on loopback (``support.cluster``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import NodesManager as AsyncNodesManager
from redis.cluster import key_slot
from redis.exceptions import MovedError

import aiflow_nb
from aiflow_nb import defaults
from aiflow_nb.errors import ConfigError, RedisUnavailable
from aiflow_nb.store import async_redis, channels, is_cluster, run_in_new_loop, sync_redis
from aiflow_nb.store.cluster import parse
from aiflow_nb.store.connection import new_async_client
from aiflow_nb.store.failures import ClusterUnreachable
from aiflow_nb.store.outage import CONNECTION_ERRORS, Outage

from support.api import KEY, client, serve
from support.cluster import SLOTS, LoopbackCluster

pytestmark = pytest.mark.own_redis  # clusters (and a single Redis) of its own


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    cluster = LoopbackCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def on_cluster(shared_cluster: LoopbackCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REDIS_URL", shared_cluster.url)
    aiflow_nb.configure()
    return shared_cluster.url


@pytest.fixture
def own_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackCluster]:
    """A cluster of this test's own, whose nodes it kills."""
    cluster = LoopbackCluster(tmp_path / "cluster")
    monkeypatch.setenv("REDIS_URL", cluster.start())
    aiflow_nb.configure()
    yield cluster
    cluster.stop()
    aiflow_nb.configure()


def _owner(cluster: LoopbackCluster, key: str) -> int:
    """The port of the master holding ``key``'s slot (slots split in three, in order)."""
    return cluster.ports[min(key_slot(key.encode()) * 3 // SLOTS, 2)]


def test_a_cluster_url_selects_the_cluster_clients_which_spread_keys_over_the_masters(
    on_cluster: str, shared_cluster: LoopbackCluster
) -> None:
    r = sync_redis()
    assert is_cluster() and isinstance(r, redis.RedisCluster)
    assert r.retry.get_retries() == defaults.REDIS_RETRIES  # the same retry policy
    names = [f"spread:{i}" for i in range(30)]
    for name in names:
        r.set(name, name)
    held = {p: shared_cluster.node(p).dbsize() for p in shared_cluster.ports}
    assert all(held.values()), held  # each master holds some: the client routes by slot

    async def read() -> list[bytes | None]:
        a = async_redis()
        assert isinstance(a, aredis.RedisCluster)
        return [await a.get(name) for name in names]

    assert run_in_new_loop(read()) == [n.encode() for n in names]


def test_a_new_async_cluster_clients_first_commands_go_to_their_slots_master(
    on_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # redis-py 8.1 routes a new asyncio client's first keyed commands to a random master
    # (it picks the node before it learns the slots): MOVED, and every fifth MOVED closes
    # the connections the other commands are using (store/cluster.py, _AsyncCluster)
    moved: list[int] = []
    move_slot = AsyncNodesManager.move_slot

    async def counted(self: AsyncNodesManager, e: MovedError) -> None:
        moved.append(e.slot_id)
        await move_slot(self, e)

    monkeypatch.setattr(AsyncNodesManager, "move_slot", counted)

    async def first_commands() -> None:
        for _ in range(3):
            client = new_async_client(on_cluster)
            try:
                await asyncio.gather(*(client.smembers(f"first:{i}") for i in range(6)))
            finally:
                await client.aclose()

    run_in_new_loop(first_commands())
    assert moved == []


def test_a_single_redis_is_not_a_cluster() -> None:
    assert not is_cluster() and not isinstance(sync_redis(), redis.RedisCluster)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://", "at least one host:port"),
        ("redis+cluster://127.0.0.1", "is not host:port"),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:x", "'127.0.0.1:x'"),
        ("redis+cluster://127.0.0.1:70000", "is not host:port"),
        ("redis://127.0.0.1:7000", "not a Redis Cluster URL"),
    ],
)
def test_a_bad_cluster_url_is_a_config_error_saying_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        parse(url)


@pytest.mark.parametrize(
    "url",
    [
        "rediss+cluster://app:hunter2-long@",  # no seed
        "rediss+cluster://app:hunter2-long@a.example:x",  # a bad seed
        "rediss+cluster://app:hunter2-long@[::1",  # cannot be parsed at all
    ],
)
def test_a_bad_cluster_urls_error_never_shows_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(url)
    assert "hunter2" not in str(info.value) and "***@" in str(info.value)


def test_a_cluster_url_carries_credentials_and_tls() -> None:
    spec = parse("rediss+cluster://app:s%40cret@a.example:6380,[::1]:6381")
    assert spec.seeds == (("a.example", 6380), ("::1", 6381))
    assert spec.kwargs() == {"ssl": True, "username": "app", "password": "s@cret"}


async def _first_message(
    channel: str, send: str, probe: Callable[[], object] = lambda: None
) -> tuple[bytes, object]:
    """Subscribe with ``channels.listen``, call ``probe()`` while subscribed, publish
    ``send`` with ``channels.publish``: what arrived and what ``probe`` said."""
    got: asyncio.Queue[bytes] = asyncio.Queue()
    ready = asyncio.Event()

    async def consume() -> None:
        async for data in channels.listen(async_redis(), channel, ready.set):
            await got.put(data)

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(ready.wait(), 10)
        seen = await asyncio.to_thread(probe)
        await asyncio.to_thread(channels.publish, sync_redis(), channel, send)
        return await asyncio.wait_for(got.get(), 10), seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_notifications_use_sharded_pub_sub_on_a_cluster(
    on_cluster: str, shared_cluster: LoopbackCluster
) -> None:
    channel = aiflow_nb.keys.cancel_channel()

    def subscribers() -> tuple[list[int], list[int]]:
        nodes = [shared_cluster.node(p) for p in shared_cluster.ports]
        sharded = [int(n.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1]) for n in nodes]
        return sharded, [int(n.pubsub_numsub(channel)[0][1]) for n in nodes]

    data, (sharded, plain) = run_in_new_loop(_first_message(channel, "run-1", subscribers))
    assert data == b"run-1"
    owner = shared_cluster.ports.index(_owner(shared_cluster, channel))
    assert sharded == [1 if i == owner else 0 for i in range(3)]  # SSUBSCRIBE on its master
    assert plain == [0, 0, 0]  # and no SUBSCRIBE anywhere


def test_notifications_use_plain_pub_sub_on_a_single_redis() -> None:
    channel = aiflow_nb.keys.cancel_channel()
    numsub = lambda: sync_redis().pubsub_numsub(channel)[0][1]  # noqa: E731
    assert run_in_new_loop(_first_message(channel, "run-2", numsub)) == (b"run-2", 1)


def _wait_cluster_down(cluster: LoopbackCluster, port: int) -> None:
    """Until ``port``'s node answers CLUSTERDOWN (a master of the others is gone)."""
    deadline = time.monotonic() + 20
    while b"cluster_state:fail" not in cluster.node(port).execute_command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "the cluster never noticed its dead master"
        time.sleep(0.1)


def test_a_cluster_with_a_master_down_is_an_outage_and_the_api_answers_503(
    own_cluster: LoopbackCluster,
) -> None:
    r = sync_redis()
    dead, live = own_cluster.ports[0], own_cluster.ports[1]
    own_cluster.kill_node(dead)
    _wait_cluster_down(own_cluster, live)
    key = next(f"k{i}" for i in range(1000) if _owner(own_cluster, f"k{i}") == live)
    with pytest.raises(redis.exceptions.ClusterDownError) as down:
        r.get(key)  # its master is up, and says the cluster is down
    assert isinstance(down.value, CONNECTION_ERRORS)
    outage = Outage("test loop", patience=0)
    with pytest.raises(RedisUnavailable, match=own_cluster.url.replace("+", r"\+")):
        outage.failed(down.value)  # a long-lived loop backs off, then gives up on it

    with serve(api_keys=(KEY,)) as server, client(server) as http:
        run_id = next(f"r{i}" for i in range(1000) if _owner(own_cluster, f"{{r{i}}}") == live)
        got = http.get(f"/runs/{run_id}")
    assert got.status_code == 503, got.text
    assert got.json()["error"] == "redis_unavailable" and "Retry-After" in got.headers


def test_a_cluster_with_every_node_down_is_redis_unavailable(
    own_cluster: LoopbackCluster,
) -> None:
    r = sync_redis()
    r.set("before", "1")
    own_cluster.stop()
    with pytest.raises(CONNECTION_ERRORS):
        r.get("before")  # its next command: every node refuses
    with pytest.raises(ClusterUnreachable):
        r.get("before")  # learning the slots again finds no node, a ConnectionError
    aiflow_nb.configure()
    with pytest.raises(RedisUnavailable, match="cannot be connected"):
        sync_redis()  # a new client: the URL and why, not redis-py's bare exception

    async def read() -> None:
        await async_redis().get("before")

    with pytest.raises(ClusterUnreachable):
        run_in_new_loop(read())


def test_a_client_held_across_configure_keeps_working_on_a_cluster(on_cluster: str) -> None:
    held = sync_redis()
    held.set("held", "1")
    aiflow_nb.configure()  # replaces the shared client; code may still hold the old one
    assert sync_redis() is not held
    assert held.get("held") == b"1"  # as a single-node client would (close() broke it)


@aiflow_nb.workflow
def cluster_double(x: int) -> int:
    return 2 * x


def test_a_run_completes_on_a_cluster_and_delete_removes_it_there(
    on_cluster: str, shared_cluster: LoopbackCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiflow_nb.errors import RunNotFound
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.ops.retention import delete, prune

    monkeypatch.setenv("AIFLOW_PARTITIONS", "4")  # this namespace's runs over four slots
    aiflow_nb.configure()
    ensure_local_worker(force=True)
    handles = [cluster_double.start(x=i) for i in range(8)]
    assert [h.result(timeout=30) for h in handles] == [2 * i for i in range(8)]
    owners = {_owner(shared_cluster, aiflow_nb.keys.run(h.run_id)) for h in handles}
    assert len(owners) > 1  # the runs live on more than one master
    delete(handles[0].run_id)  # its script runs in a cluster pipeline (no eval() there)
    with pytest.raises(RunNotFound):
        handles[0].status  # noqa: B018
    assert prune(0.0) == 7
    assert not any(sync_redis().exists(aiflow_nb.keys.run(h.run_id)) for h in handles)
