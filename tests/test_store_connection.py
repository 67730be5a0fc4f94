"""A loop's async Redis clients close with the loop: ``async_redis()`` and the API's pool
register with ``close_with_loop``; the loop's owner awaits ``aclose_async_redis()``."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis

import aiflow_nb
from aiflow_nb.ops.local import LocalWorker
from aiflow_nb.store import async_redis, run_in_new_loop


def _open_connections(client: aredis.Redis) -> list[Any]:
    pool: Any = client.connection_pool
    held = [*pool._available_connections, *pool._in_use_connections]
    return [c for c in held if c.is_connected]


def test_run_in_new_loop_closes_the_loops_clients_even_those_configure_replaced() -> None:
    async def use() -> list[aredis.Redis]:
        first = async_redis()
        assert async_redis() is first  # one client per loop, registered once
        await first.ping()
        aiflow_nb.configure()  # forgets the client; the loop must still close it
        second = async_redis()
        await second.ping()
        assert _open_connections(first) and _open_connections(second)
        return [first, second]

    clients = run_in_new_loop(use())
    assert clients[0] is not clients[1]
    assert [_open_connections(c) for c in clients] == [[], []]


def test_the_in_process_worker_closes_its_client_when_it_stops() -> None:
    local = LocalWorker(monitor=False).start()
    client = local.worker.client
    assert _open_connections(client)
    local.stop()
    assert not local.alive and local.error is None
    assert _open_connections(client) == []
