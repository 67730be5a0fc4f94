"""The asyncio clients pack commands with hiredis (``store/packing.py``): the bytes sent are
redis-py's own, what redis-py refuses is refused the same way, and the values go through
a real Redis (the session's: a single node, or a cluster in the cluster run) unchanged."""

from __future__ import annotations

import asyncio
import enum

import pytest
import redis.asyncio as aredis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError

from aiflow_nb.api.pool import api_redis
from aiflow_nb.store import is_cluster, run_in_new_loop
from aiflow_nb.store.connection import new_async_client, redis_url
from aiflow_nb.store.packing import HiredisPacking, packed


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


VALUES: list[object] = [
    "plain",
    "é ✓ 漢字",
    b"\x00\xff\r\n",
    0,
    -7,
    2**80,
    1.5,
    0.1,
    1796905129.7621384,
    1e-7,
    float("inf"),
    -0.0,
    Colour.RED,
    Level.HIGH,
    bytearray(b"ba"),
    memoryview(b"mv"),
    "x" * 10_000,
    b"y" * 70_000,
]
"""Arguments of every kind a command of this project (or a user's) may carry."""


def _bytes(connection: Connection, *args: object) -> bytes:
    return b"".join(bytes(part) for part in connection.pack_command(*args))


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_command_is_packed_to_the_bytes_redis_py_would_send(value: object) -> None:
    ours, theirs = packed(Connection)(), Connection()
    assert isinstance(ours, HiredisPacking)
    for command in (
        ("SET", "key", value),
        ("EVALSHA", "f" * 40, 2, "{a}:k1", "{a}:k2", value, "c", value, 10, 2.5),
        ("CONFIG GET", value),  # a two-word command name is sent as two arguments
        (b"CLIENT SETINFO", "LIB-NAME", value),
    ):
        assert _bytes(ours, *command) == _bytes(theirs, *command), command


def test_hiredis_packs_the_plain_arguments_and_redis_py_the_rest() -> None:
    """The fast path is taken for what the project sends (text, string enums, bytes,
    numbers) and not for what hiredis would format otherwise (an IntEnum, whose ``repr``
    redis-py sends) or cannot take (a memoryview)."""
    ours = packed(Connection)()
    assert ours._hiredis_can(("EVALSHA", "sha", 1, "k", b"v", 1.5, Colour.RED))
    assert not ours._hiredis_can(("SET", "k", Level.HIGH))
    assert not ours._hiredis_can(("SET", "k", memoryview(b"v")))
    latin = packed(Connection)(encoding="latin-1")
    assert not latin._hiredis_can(("SET", "k", "é"))  # not UTF-8: redis-py encodes it
    assert _bytes(latin, "SET", "k", "é") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n\xe9\r\n"


@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}, object()], ids=repr)
def test_what_redis_py_cannot_send_is_refused_with_its_data_error(bad: object) -> None:
    for connection in (packed(Connection)(), Connection()):
        with pytest.raises(DataError):
            connection.pack_command("SET", "key", bad)


def test_text_that_is_not_unicode_is_refused_as_redis_py_refuses_it() -> None:
    """A lone surrogate (hostile or broken text) cannot be encoded as UTF-8: both packers
    raise the same ``UnicodeEncodeError`` and nothing is sent."""
    for connection in (packed(Connection)(), Connection()):
        with pytest.raises(UnicodeEncodeError):
            connection.pack_command("SET", "key", "bad \ud800 text")


def test_the_apis_client_packs_with_hiredis_and_a_burst_waits_for_a_connection() -> None:
    """``api_redis()`` is made by ``new_async_client`` like every other client: its
    connections pack with hiredis, and on a single Redis its pool makes a command wait for
    a free connection (``wait``) where a plain pool fails with too many connections."""
    key = "{packing-test}:blocked"

    async def use() -> tuple[list[type], object, object]:
        api = api_redis()
        await api.ping()
        if is_cluster():  # a cluster keeps a pool per node and does not wait
            return _connection_classes(api), None, None
        waiting = new_async_client(redis_url(), max_connections=1, wait=10)
        failing = new_async_client(redis_url(), max_connections=1)
        try:
            both = await asyncio.gather(waiting.blpop([key], 0.2), waiting.blpop([key], 0.2))
            refused = await asyncio.gather(
                failing.blpop([key], 0.2), failing.blpop([key], 0.2), return_exceptions=True
            )
            return _connection_classes(api), both, refused
        finally:
            await waiting.aclose()
            await failing.aclose()

    classes, both, refused = run_in_new_loop(use())
    assert classes and all(issubclass(cls, HiredisPacking) for cls in classes)
    if not is_cluster():
        assert both == [None, None]
        assert isinstance(refused, list)
        assert any(isinstance(r, RedisConnectionError) for r in refused), refused


def test_a_send_on_a_connection_another_task_closed_is_a_connection_error() -> None:
    """The race (a cluster client's re-initialisation disconnecting a connection in use)
    cannot be timed here; the test closes the connection where the other task's
    ``aclose()`` lands, between the send's connect check and its write (in the health
    check it awaits), and the send fails with redis-py's ``ConnectionError``, which the
    outage handling re-sends on, not ``AttributeError``. The client then works on."""

    async def use() -> tuple[BaseException | None, object]:
        client = new_async_client(redis_url())
        try:
            await client.ping()
            if is_cluster():
                await client.initialize()
                node = client.get_default_node()
                connection = node.acquire_connection()  # type: ignore[union-attr]
            else:
                connection = await client.connection_pool.get_connection()
            plain_check = connection.check_health

            async def closed_meanwhile() -> None:
                await connection.disconnect()
                await plain_check()

            connection.check_health = closed_meanwhile  # type: ignore[method-assign]
            error: BaseException | None = None
            try:
                await connection.send_command("PING")
            except Exception as exc:
                error = exc
            del connection.check_health  # the class's again
            await connection.disconnect()
            return error, await client.ping()
        finally:
            await client.aclose()

    error, after = run_in_new_loop(use())
    assert isinstance(error, RedisConnectionError), repr(error)
    assert "closed by another task" in str(error)
    assert after is True


def test_an_attribute_error_of_another_cause_is_not_called_a_closed_connection() -> None:
    """A bug in a send (here: the open writer's ``writelines`` reading an attribute that is
    not there) keeps its own error, although redis-py has disconnected by the time it is
    seen: only the writer's methods on a closed connection's None become
    ``ConnectionError``."""

    async def use() -> BaseException | None:
        client = new_async_client(redis_url())
        try:
            await client.ping()
            if is_cluster():
                connection = client.get_default_node().acquire_connection()  # type: ignore[union-attr]
            else:
                connection = await client.connection_pool.get_connection()
            await connection.connect()
            connection._writer.writelines = lambda _parts: object().missing  # type: ignore[union-attr, attr-defined]
            try:
                await connection.send_packed_command([b"*1\r\n$4\r\nPING\r\n"])
            except Exception as exc:
                return exc
            finally:
                await connection.disconnect()
            return None
        finally:
            await client.aclose()

    error = run_in_new_loop(use())
    assert isinstance(error, AttributeError) and error.name == "missing", repr(error)


def test_packed_makes_one_class_per_connection_class() -> None:
    assert packed(Connection) is packed(Connection) is packed(packed(Connection))
    assert packed(UnixDomainSocketConnection) is not packed(Connection)
    assert issubclass(packed(UnixDomainSocketConnection), UnixDomainSocketConnection)


def test_the_asyncio_clients_pack_with_hiredis_and_values_round_trip_through_redis() -> None:
    """Every connection ``new_async_client`` makes packs with hiredis (a single node's
    pool, or each node of a cluster), and what is written reads back byte for byte, by a
    command, a pipeline and a script."""
    keys = [f"{{packing-test}}:{i}" for i in range(len(VALUES))]
    expected = [_sent(v) for v in VALUES]

    async def use() -> tuple[list[type], list[object], list[object], object]:
        client = new_async_client(redis_url())
        try:
            for key, value in zip(keys, VALUES, strict=True):
                await client.set(key, value)  # type: ignore[arg-type]
            singly = [await client.get(key) for key in keys]
            pipe = client.pipeline(transaction=False)
            for key, value in zip(keys, VALUES, strict=True):
                pipe.set(key, value).get(key)  # type: ignore[arg-type]
            piped = (await pipe.execute())[1::2]
            echoed = await client.eval("return ARGV[1]", 1, keys[0], "é ✓ 漢字")
            return _connection_classes(client), singly, piped, echoed
        finally:
            await client.delete(*keys)  # one hash tag: one slot, on a cluster too
            await client.aclose()

    classes, singly, piped, echoed = run_in_new_loop(use())
    assert classes and all(issubclass(cls, HiredisPacking) for cls in classes)
    assert singly == expected and piped == expected
    assert echoed == "é ✓ 漢字".encode()


def test_a_cluster_client_makes_every_node_connection_pack_with_hiredis() -> None:
    """(No cluster needed: the asyncio cluster client connects on first use.)"""
    client = new_async_client("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    assert isinstance(client, aredis.RedisCluster)
    manager = client.nodes_manager
    assert issubclass(manager.connection_kwargs["connection_class"], HiredisPacking)
    assert manager.startup_nodes and all(
        issubclass(node.connection_class, HiredisPacking) for node in manager.startup_nodes.values()
    )


def _sent(value: object) -> bytes:
    """The bytes of ``value`` as redis-py sends it (what Redis stores)."""
    return bytes(Connection().encoder.encode(value))  # type: ignore[arg-type]


def _connection_classes(client: aredis.Redis) -> list[type]:
    if isinstance(client, aredis.RedisCluster):
        return [node.connection_class for node in client.nodes_manager.nodes_cache.values()]
    return [type(c) for c in client.connection_pool._available_connections]
