"""Keeping finished runs beyond their retention: Parquet files, partitioned by day.

``archive(dir)`` writes each finished run's record and events under ``dir/runs/`` and
``dir/events/`` (hive partitions ``day=YYYY-MM-DD``, the day the run ended, UTC);
``load_archive(dir)`` reads them back as the runs DataFrame and the spans DataFrame (the
columns of ``RunHandle.to_pandas()``, after a ``run_id`` column), folded by the same code
(``access/spans.py``). JSON values (inputs, output, error, event data) are kept as JSON
text; a large step result an event refers to in the journal (``events/refs.py``) is
written in place of the reference (the journal is not archived), a reference to the
record's inputs or output stays (the runs table holds them). Archiving a run again adds
a copy; loading keeps the last one.

Example::

    archive("runs-archive", since=time.time() - 86400)    # -> runs written
    runs, spans = load_archive("runs-archive")
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

import pandas as pd
import redis

from .. import defaults, keys
from ..events.model import Event
from ..events.refs import JOURNAL, REF, resolve
from ..events.status import TERMINAL
from ..serialization import dumps, loads
from ..store import sync_redis
from ..store.replies import RawHash
from .gaps import build_gaps
from .spans import SPAN_COLUMNS, build_spans, spans_dataframe

__all__ = ["ARCHIVE_RUN_COLUMNS", "Archive", "archive", "load_archive"]

ARCHIVE_RUN_COLUMNS = [
    "run_id",
    "workflow",
    "version",
    "status",
    "created_at",
    "started_at",
    "ended_at",
    "attempt",
    "restarts",
    "reason",
    "inputs",
    "output",
    "error",
]
"""Columns of the archived runs table (``inputs``, ``output``, ``error``: JSON text)."""

_EVENT_COLUMNS = ["run_id", "id", "type", "ts", "span_id", "parent_id", "name", "attempt", "data"]
_TIMES = ("created_at", "started_at", "ended_at")


class Archive(NamedTuple):
    """What ``load_archive`` returns: one row per run, one row per span (and gap)."""

    runs: pd.DataFrame
    spans: pd.DataFrame


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _run_row(raw: RawHash) -> dict[str, Any] | None:
    rec = {k.decode(): v.decode() for k, v in raw.items()}
    if rec.get("status") not in TERMINAL or not rec.get("ended_at"):
        return None
    row: dict[str, Any] = {name: rec.get(name) for name in ARCHIVE_RUN_COLUMNS}
    for name in _TIMES:
        row[name] = float(rec[name]) if rec.get(name) else None
    for name in ("attempt", "restarts"):
        row[name] = int(rec.get(name) or 0)
    row["day"] = _day(row["ended_at"])
    return row


def _journaled_in_place(r: redis.Redis, run_id: str, events: list[Event]) -> None:
    """Put the journaled step results the events refer to in place of their references
    (the journal is not archived); references to the record's values stay (the runs
    table holds them)."""
    parts = []
    for e in events:
        part = {
            k: v
            for k, v in e.data.items()
            if k.endswith(REF) and isinstance(v, dict) and v.get("at") == JOURNAL
        }
        if part:
            parts.append((e.data, part))
    refs = [set(part) for _, part in parts]
    resolve(r, run_id, [part for _, part in parts])  # in place: value for reference
    for (data, part), names in zip(parts, refs, strict=True):
        for key in names - set(part):
            del data[key]
        data.update(part)


def _event_rows(
    r: redis.Redis, run_id: str, day: str, entries: list[Any]
) -> Iterator[dict[str, Any]]:
    events = [Event.from_entry(entry_id, fields, run_id) for entry_id, fields in entries]
    _journaled_in_place(r, run_id, events)
    for e in events:
        yield {
            "run_id": run_id,
            "id": e.id,
            "type": e.type,
            "ts": e.ts,
            "span_id": e.span_id,
            "parent_id": e.parent_id,
            "name": e.name,
            "attempt": e.attempt,
            "data": dumps(e.data).decode(),
            "day": day,
        }


def _pages(r: redis.Redis, page: int) -> Iterator[list[str]]:
    """Run ids of each partition's index, oldest first, a page at a time."""
    for part in range(keys.partitions()):
        start = 0
        while True:
            raw = cast("list[bytes]", r.zrange(keys.runs(part), start, start + page - 1))
            if not raw:
                break
            start += len(raw)
            yield [i.decode() for i in raw]


def archive(
    directory: str | Path,
    since: float | None = None,
    *,
    client: redis.Redis | None = None,
    progress: Callable[[int], None] | None = None,
    page: int = defaults.PRUNE_PAGE,
) -> int:
    """Write every finished run (that ended at or after ``since``, epoch seconds) with its
    events to ``directory`` as Parquet; how many runs were written."""
    r = client or sync_redis()
    runs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for ids in _pages(r, page):
        pipe = r.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(keys.run(run_id))
        rows = [_run_row(raw) for raw in pipe.execute()]
        chosen = [
            row for row in rows if row is not None and (since is None or row["ended_at"] >= since)
        ]
        pipe = r.pipeline(transaction=False)
        for row in chosen:
            pipe.xrange(keys.run_events(row["run_id"]))
        for row, entries in zip(chosen, pipe.execute(), strict=True):
            runs.append(row)
            events.extend(_event_rows(r, row["run_id"], row["day"], entries))
        if progress is not None:
            progress(len(runs))
    if runs:
        _write(Path(directory), runs, events)
    return len(runs)


def _write(root: Path, runs: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = f"part-{int(time.time())}-{uuid.uuid4().hex[:8]}-{{i}}.parquet"
    for sub, rows, columns in (
        ("runs", runs, ARCHIVE_RUN_COLUMNS),
        ("events", events, _EVENT_COLUMNS),
    ):
        frame = pd.DataFrame(rows, columns=[*columns, "day"])
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_to_dataset(
            table, root_path=str(root / sub), partition_cols=["day"], basename_template=name
        )


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    import pyarrow.dataset as ds

    dataset = (
        ds.dataset(str(path), format="parquet", partitioning="hive") if path.exists() else None
    )
    if dataset is None or not dataset.files:  # none yet, or every partition removed
        return pd.DataFrame(columns=[*columns, "day"])
    table = dataset.to_table()
    frame = table.to_pandas()
    frame["day"] = frame["day"].astype(str)
    return frame


def load_archive(directory: str | Path) -> Archive:
    """The runs and spans of an archive written by ``archive`` (``aiflow archive``)."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"no archive at {root}: no such directory")
    runs = _read(root / "runs", ARCHIVE_RUN_COLUMNS)
    runs = runs.drop_duplicates("run_id", keep="last").sort_values("created_at")
    for col in _TIMES:
        runs[col] = pd.to_datetime(runs[col], unit="s", utc=True)
    events = _read(root / "events", _EVENT_COLUMNS).drop_duplicates(["run_id", "id"], keep="last")
    frames = [_spans_of(run_id, group) for run_id, group in events.groupby("run_id", sort=False)]
    spans = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["run_id", *SPAN_COLUMNS])
    )
    return Archive(runs.reset_index(drop=True)[[*ARCHIVE_RUN_COLUMNS, "day"]], spans)


def _spans_of(run_id: Any, group: pd.DataFrame) -> pd.DataFrame:
    events = [
        Event(
            id=str(row.id),
            type=str(row.type),
            ts=float(row.ts),
            run_id=str(run_id),
            span_id=_opt(row.span_id),
            parent_id=_opt(row.parent_id),
            name=_opt(row.name),
            attempt=None if pd.isna(row.attempt) else int(row.attempt),
            data=loads(row.data),
        )
        for row in group.sort_values("id", key=_stream_order).itertuples(index=False)
    ]
    frame = spans_dataframe(build_spans(events).values(), build_gaps(events))
    frame.insert(0, "run_id", str(run_id))
    return frame


def _opt(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _stream_order(ids: pd.Series) -> pd.Series:
    """Stream entry ids (``<ms>-<seq>``) in stream order."""
    parts = ids.str.split("-", expand=True).astype("int64")
    return parts[0] * 1_000_000 + parts[1]
