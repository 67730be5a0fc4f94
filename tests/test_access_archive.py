"""``aiflow archive`` / ``aiflow_nb.load_archive`` round trip on real runs: Parquet
partitioned by day, the runs table and the spans DataFrame equal to what
``RunHandle.to_pandas()`` showed before the runs were deleted."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import aiflow_nb
from aiflow_nb import component, workflow
from aiflow_nb.access.archive import ARCHIVE_RUN_COLUMNS, archive
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.access.spans import SPAN_COLUMNS
from aiflow_nb.cli import cli
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.ops.submit import cancel, submit
from aiflow_nb.serialization import loads

from support.ops import fleet


def test_archive_round_trip_then_runs_deleted(tmp_path: Path) -> None:
    with fleet(tmp_path) as start:
        start().ready()
        done = [RunHandle(submit("steps", {"n": 3, "delay": 0.0})) for _ in range(3)]
        done.append(RunHandle(submit("one_step", {"x": 5})))
        for h in done:
            h.result(timeout=30)
    cancelled = RunHandle(submit("nobody_serves_this", {}))
    cancel(cancelled.run_id)
    waiting = RunHandle(submit("nobody_serves_this", {"a": 1}))
    finished = [*done, cancelled]
    before = {h.run_id: h.to_pandas() for h in finished}
    records = {h.run_id: h.record() for h in finished}
    out = tmp_path / "archive"
    result = CliRunner().invoke(cli, ["archive", "--to", str(out)])
    assert result.exit_code == 0, result.output
    assert f"archived {len(finished)} runs to {out}" in result.output
    day = time.strftime("%Y-%m-%d", time.gmtime(records[done[0].run_id]["ended_at"]))
    assert sorted(p.name for p in (out / "runs").iterdir()) == [f"day={day}"]
    assert list((out / "events" / f"day={day}").glob("*.parquet"))
    for h in finished:
        aiflow_nb.delete(h.run_id)
    runs, spans = aiflow_nb.load_archive(out)
    assert sorted(runs["run_id"]) == sorted(before)  # the waiting run is not archived
    assert waiting.run_id not in set(spans["run_id"])
    for run_id, rec in records.items():
        row = runs.set_index("run_id").loc[run_id]
        assert row["status"] == rec["status"] and row["workflow"] == rec["workflow"]
        assert row["ended_at"] == pd.Timestamp(rec["ended_at"], unit="s", tz="UTC")
        assert row["day"] == day
        assert aiflow_nb.serialization.loads(row["inputs"]) == rec["inputs"]
        mine = spans[spans["run_id"] == run_id].drop(columns="run_id").reset_index(drop=True)
        assert list(mine.columns) == SPAN_COLUMNS
        pd.testing.assert_frame_equal(mine, before[run_id], check_dtype=False)
    assert len(spans[spans["run_id"] == done[0].run_id]) == 4  # the root and its 3 steps


def test_archive_since_and_archiving_again_keeps_one_copy(tmp_path: Path) -> None:
    with fleet(tmp_path) as start:
        start().ready()
        old = RunHandle(submit("one_step", {"x": 1}))
        old.result(timeout=30)
        time.sleep(1.2)
        new = RunHandle(submit("one_step", {"x": 2}))
        new.result(timeout=30)
    out = tmp_path / "a"
    assert archive(out, since=time.time() - 1.0) == 1
    assert list(aiflow_nb.load_archive(out).runs["run_id"]) == [new.run_id]
    assert archive(out) == 2
    runs, spans = aiflow_nb.load_archive(out)
    assert list(runs["run_id"]) == [old.run_id, new.run_id]
    assert spans.groupby("run_id").size().to_dict() == {old.run_id: 2, new.run_id: 2}
    result = CliRunner().invoke(cli, ["archive", "--to", str(out), "--since", "next tuesday"])
    assert result.exit_code == 2 and "--since must be a duration" in result.output
    with pytest.raises(FileNotFoundError, match="no archive at"):
        aiflow_nb.load_archive(tmp_path / "nothing")


@component
def archived_make(n: int) -> str:
    return "s" * n


@workflow
def archived_big_step(n: int) -> int:
    return len(archived_make(n))


def test_an_archived_large_step_result_is_kept_not_a_reference_to_the_journal(
    tmp_path: Path,
) -> None:
    """A step result past the inline size is in the run's journal, which is not archived:
    the archive held only the event's reference (a 500-character preview)."""
    ensure_local_worker(force=True)
    n = 100_000
    handle = archived_big_step.start(n=n)
    assert handle.result(timeout=30) == n
    out = tmp_path / "archive"
    assert archive(out) == 1
    aiflow_nb.delete(handle.run_id)
    events = pd.read_parquet(out / "events")
    done = [
        loads(row.data)
        for row in events.itertuples()
        if row.type == "span.completed" and row.name == "archived_make"
    ]
    assert done == [{**done[0], "output": "s" * n}] and "output_ref" not in done[0]
    assert len(aiflow_nb.load_archive(out).spans) == 2


def test_an_archive_whose_day_partitions_were_all_removed_loads_empty(tmp_path: Path) -> None:
    """``runs/`` and ``events/`` left without a partition (old days removed by hand, a
    stray ``.DS_Store``): load_archive raised KeyError 'day'."""
    for sub in ("runs", "events"):
        (tmp_path / sub).mkdir()
    (tmp_path / "runs" / ".DS_Store").write_bytes(b"\0")
    runs, spans = aiflow_nb.load_archive(tmp_path)
    assert runs.empty and list(runs.columns) == [*ARCHIVE_RUN_COLUMNS, "day"]
    assert spans.empty and list(spans.columns) == ["run_id", *SPAN_COLUMNS]
