"""Partitions with real worker processes: the workers of one group share the partitions
(each partition read by one of them), a worker that dies leaves its partitions to the
others, ids are minted where asked, and a namespace keeps its first partition count."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

import aiflow_nb as af
from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.ops.submit import new_run_id, submit

from support.ops import fleet, record, wait_for


@pytest.fixture
def eight(monkeypatch: pytest.MonkeyPatch, namespace: str) -> int:
    monkeypatch.setenv("AIFLOW_PARTITIONS", "8")
    af.configure()
    assert keys.partitions() == 8
    return 8


def test_new_ids_are_minted_in_the_partition_asked_and_spread_otherwise(eight: int) -> None:
    assert all(keys.partition_of(new_run_id(p)) == p for p in range(eight) for _ in range(20))
    assert {keys.partition_of(new_run_id()) for _ in range(400)} == set(range(eight))
    with pytest.raises(ValueError, match="partition must be from 0 to 7"):
        new_run_id(8)
    key = "order-42"  # a run submitted with an idempotency key is in the key's partition
    run_id = submit("nobody_serves_this", {}, idempotency_key=key)
    assert keys.partition_of(run_id) == keys.idempotency_partition(key)


def test_a_namespace_keeps_the_partition_count_it_was_first_used_with(
    eight: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIFLOW_PARTITIONS", "3")
    af.configure()
    assert keys.partitions() == 8  # stored in Redis when the namespace was first used
    assert "AIFLOW_PARTITIONS=3 is ignored" in caplog.text
    with pytest.raises(af.ConfigError, match="AIFLOW_PARTITIONS"):
        monkeypatch.setenv("AIFLOW_PARTITIONS", "0")
        af.configure()


def test_workers_share_the_partitions_and_a_dead_ones_share_passes_to_the_others(
    eight: int, tmp_path: Path
) -> None:
    env = {"AIFLOW_PARTITIONS": str(eight)}
    with fleet(tmp_path) as start:
        first, second = start(env=env).ready(), start(env=env).ready()
        time.sleep(1.5)  # a few heartbeats (0.25 s): each has seen the other
        handles = [RunHandle(submit("one_step", {"x": i})) for i in range(48)]
        assert [h.result(timeout=60) for h in handles] == list(range(48))
        by_partition: dict[int, set[str]] = defaultdict(set)
        for h in handles:
            by_partition[keys.partition_of(h.run_id)].add(record(h.run_id)["worker"])
        assert all(len(workers) == 1 for workers in by_partition.values()), by_partition
        assert set().union(*by_partition.values()) == {first.id, second.id}

        first.kill()  # its peers entry expires after the heartbeat TTL: the other takes over
        late = [RunHandle(submit("one_step", {"x": i})) for i in range(96)]
        wait_for(lambda: all(h.status == "completed" for h in late), 30, "the late runs")
    assert {record(h.run_id)["worker"] for h in late} == {second.id}
    assert {keys.partition_of(h.run_id) for h in late} == set(range(eight))


def test_listings_merge_the_partitions_newest_first_through_a_cursor(eight: int) -> None:
    from aiflow_nb.access.runs import list_runs
    from aiflow_nb.api import records

    made = [submit("nobody_serves_this", {"i": i}) for i in range(30)]
    assert len({keys.partition_of(run_id) for run_id in made}) > 1  # several partitions
    newest_first = made[::-1]  # created one after another
    assert [r["run_id"] for r in list_runs(limit=100)] == newest_first
    assert [r["run_id"] for r in list_runs(limit=7, offset=5)] == newest_first[5:12]
    assert list(af.runs(limit=30)["run_id"]) == newest_first
    paged: list[str] = []
    cursor = None
    while True:
        rows, cursor = records.page("nobody_serves_this", None, 7, cursor)
        paged += [r["run_id"] for r in rows]
        if cursor is None:
            break
    assert paged == newest_first


def test_a_worker_reads_no_more_than_it_can_hold_over_its_partitions(
    eight: int, tmp_path: Path
) -> None:
    """A worker serving 8 partitions with room for 2 runs takes 2 queue entries and leaves
    every other entry where it is: none read and then put back (a give-back re-adds the
    entry with a new id, at the back of its queue, one transaction per entry)."""
    from aiflow_nb.ops.routing import run_queue
    from aiflow_nb.ops.submit import resolve_version
    from aiflow_nb.store import sync_redis

    r = sync_redis()
    handles = [RunHandle(submit("sleeper", {"seconds": 30.0})) for _ in range(24)]
    assert len({keys.partition_of(h.run_id) for h in handles}) >= 4  # (random ids) spread
    version = resolve_version()
    queues = {
        run_queue(version, "sleeper", None, partition=keys.partition_of(h.run_id)) for h in handles
    }

    def entry_ids() -> set[tuple[str, bytes]]:  # (ids repeat across streams)
        return {(q, msg_id) for q in queues for msg_id, _ in r.xrange(q)}

    before = entry_ids()
    assert len(before) == 24
    with fleet(tmp_path) as start:
        start("--concurrency", "2", env={"AIFLOW_PARTITIONS": str(eight)}).ready()
        wait_for(lambda: sum(h.status == "running" for h in handles) == 2, 30, "two runs in hand")
        time.sleep(1.5)  # several read turns over the partitions while full
        assert sum(h.status == "running" for h in handles) == 2
        assert entry_ids() <= before  # nothing re-added
        assert len(before - entry_ids()) <= 2  # at most the two in hand were deleted
