"""The slot checker (issue 16): a representative run of the suite's Redis operations on
one node, every command the server receives recorded (MONITOR), and no command,
transaction or script may touch keys of more than one Redis Cluster slot (the keys as
``COMMAND GETKEYS`` names them, slots by ``key_slot``; ``support/slots.py``). With
``AIFLOW_PARTITIONS=1`` and ``=8``: what a cluster would refuse with CROSSSLOT fails here.

The operations: deploy, register_bundle, limits.set, a run through the in-process worker
with steps, a cached component and LLM calls under two rate limits (the local
OpenAI-compatible server), the cache hit of a second run, idempotent submits, a wait
answered and a wait timed out by the monitor, cancels (queued and running), a failed
run resumed, a rerun, a worker process SIGKILLed mid-run and its run recovered by the
monitor, listings (``runs()``, the API's cursor pages, ``aiflow runs``), delete, prune.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import aiflow_nb as af
from aiflow_nb import keys, limits
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.api import records
from aiflow_nb.cli import cli
from aiflow_nb.examples import chaos  # noqa: F401  (its workflows: served in-process too)
from aiflow_nb.llm import AsyncOpenAI
from aiflow_nb.ops.code import register_bundle, register_source
from aiflow_nb.ops.deployments import deploy
from aiflow_nb.ops.local import stop_local_worker
from aiflow_nb.ops.retention import prune
from aiflow_nb.ops.submit import submit
from aiflow_nb.store.connection import reset

from support.llm import fake_llm
from support.ops import fleet, journal_keys, running_on, start_monitor, wait_for
from support.slots import Recorder, TcpRedis, checked, violations

CELL = """
from aiflow_nb import component, workflow

@component
def triple(x: int) -> int:
    return 3 * x

@workflow
def slot_cell(x: int) -> int:
    return triple(x)
"""

_attempts: dict[str, int] = {}
_llm: dict[str, AsyncOpenAI] = {}
"""The LLM client of each local server (made outside the worker's loop, as a notebook's)."""


@af.component(cache=600)
def cached_square(x: int) -> int:
    return x * x


@af.workflow
async def slot_llm(x: int, base_url: str) -> dict[str, int]:
    reply = await _llm[base_url].chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"square {x}"}]
    )
    return {"square": cached_square(x), "chars": len(reply.choices[0].message.content or "")}


@af.workflow
def slot_flaky(tag: str) -> str:
    _attempts[tag] = _attempts.get(tag, 0) + 1
    if _attempts[tag] == 1:
        raise RuntimeError("the first attempt fails")
    return cached_square(7) and tag


@pytest.fixture(params=[1, 8], ids=["P1", "P8"])
def tcp_redis(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TcpRedis]:
    """This test's own redis-server on loopback TCP, with ``AIFLOW_PARTITIONS`` set."""
    server = TcpRedis(tmp_path / "redis")
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("AIFLOW_PARTITIONS", str(request.param))
    af.configure()
    try:
        yield server
    finally:
        stop_local_worker()
        server.stop()
        reset()


def _scenario(tmp_path: Path, namespace: str) -> None:
    deploy("default")
    register_bundle("slot_cell", [register_source(CELL, "<slot cell>")])
    limits.set("slot:gpt-4o-mini", rpm=60_000, tpm=10_000_000, concurrency=4)
    limits.set("slot", concurrency=8)
    with fake_llm() as server:
        _llm[server.base_url] = AsyncOpenAI(
            base_url=server.base_url, api_key="unused", provider_name="slot"
        )
        first = slot_llm.start(x=4, base_url=server.base_url)
        assert first.result(timeout=30)["square"] == 16
        again = slot_llm.start(x=4, base_url=server.base_url)  # the cache answers
        assert again.result(timeout=30)["square"] == 16
    assert any(e.type == "span.cached" for e in again.events(follow=False))

    assert submit("steps", {"n": 1}, idempotency_key="once") == submit(
        "steps", {"n": 1}, idempotency_key="once"
    )
    asked = chaos.approval.start()
    wait_for(lambda: asked.status == "waiting", 20, "the run to park")
    af.respond(asked.run_id, "approve", True)
    assert asked.result(timeout=20) == {"answer": True}
    timed = chaos.approval.start(timeout=0.3)
    assert timed.result(timeout=20) == {"answer": None}  # the monitor's timer sweep

    queued = RunHandle(submit("nobody_serves_this", {}))
    assert queued.cancel() == "cancelled"
    running = chaos.steps.start(n=200, delay=0.05)
    wait_for(lambda: running.status == "running", 20, "the run to start")
    running.cancel()
    wait_for(lambda: running.status == "cancelled", 20, "the cancel")

    flaky = slot_flaky.start(tag=namespace)
    with pytest.raises(af.RunError):
        flaky.result(timeout=20)
    assert af.resume(flaky.run_id).result(timeout=20) == namespace
    assert first.rerun().result(timeout=30)["square"] == 16

    stop_local_worker()  # the worker processes take the next run
    with fleet(tmp_path) as start:
        victim = start().ready()
        killed = RunHandle(submit("steps", {"n": 6, "delay": 0.2}))
        wait_for(lambda: len(journal_keys(killed.run_id)) >= 2, 20, "two journaled steps")
        assert running_on(killed.run_id) == victim.id
        victim.kill()
        monitor = start_monitor(tmp_path)
        try:
            start().ready()
            assert killed.result(timeout=30) == list(range(6))
        finally:
            monitor.terminate()
            monitor.wait(10)

    listed = af.runs(limit=100)
    assert killed.run_id in set(listed["run_id"])
    page, cursor = records.page(None, None, 3, None)
    rest, _ = records.page(None, None, 100, cursor)
    assert len({r["run_id"] for r in page + rest}) == len(page) + len(rest) >= 10
    assert CliRunner().invoke(cli, ["runs", "--json", "--limit", "50"]).exit_code == 0

    af.delete(again.run_id)
    time.sleep(0.05)
    assert prune(older_than=0.01) > 0


def test_no_command_transaction_or_script_spans_slots(
    tcp_redis: TcpRedis, tmp_path: Path, namespace: str
) -> None:
    recorder = Recorder(tcp_redis.port).start()
    try:
        _scenario(tmp_path, namespace)
    finally:
        lines = recorder.stop()
    assert checked(lines) > 500, "MONITOR recorded too little to check"
    spanning = violations(lines, tcp_redis.port, namespace)
    assert not spanning, f"{len(spanning)} spanning slots:\n" + "\n".join(spanning[:40])
    assert keys.partitions() == af.settings().partitions  # the count this test set
