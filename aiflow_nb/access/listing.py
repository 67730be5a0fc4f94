"""Run ids newest first over every partition's creation-time index, merged.

Each partition has its own index (``keys.runs(p)``, ``keys.workflow_runs(name, p)``); a
listing reads a page of each (pipelined: one round trip on one Redis, one per node on a
cluster), merges them by creation time and reads the next page of a partition only
when its last one is used up. The order is (creation time, run id) descending, so a
cursor ``(created_at, run_id)`` resumes a listing exactly where it stopped.

Example::

    for run_id, created in newest(r, workflow="report"):
        ...
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from .. import keys

__all__ = ["Cursor", "index_of", "newest", "records"]

Cursor = tuple[float, str]
"""(creation time, run id) of the last run listed."""


def index_of(workflow: str | None, partition: int) -> str:
    """The creation-time index of ``partition``: every run's, or one workflow's."""
    return keys.workflow_runs(workflow, partition) if workflow else keys.runs(partition)


def _before(score: float, member: str, after: Cursor | None) -> bool:
    return after is None or score < after[0] or (score == after[0] and member < after[1])


class _Partition:
    """One partition's index, read a page at a time after a cursor."""

    def __init__(self, index: str, after: Cursor | None) -> None:
        self.index = index
        self.after = after
        self.done = False

    def queue(self, pipe: Any, batch: int) -> None:
        high: str | float = "+inf" if self.after is None else self.after[0]
        pipe.zrevrangebyscore(self.index, high, "-inf", start=0, num=batch, withscores=True)

    def take(self, raw: list[tuple[bytes, float]], batch: int) -> list[tuple[float, str]]:
        rows = [(float(s), m.decode()) for m, s in raw]
        fresh = [(s, m) for s, m in rows if _before(s, m, self.after)]
        if len(raw) < batch:
            self.done = True
        elif not fresh:  # a whole page with the cursor's score: read past it
            self.done = True
        if fresh:
            self.after = fresh[-1]
        return fresh


def newest(
    r: Any,
    workflow: str | None = None,
    after: Cursor | None = None,
    batch: int = 100,
) -> Iterator[Cursor]:
    """(creation time, run id) of each run, newest first, after ``after``."""
    parts = [_Partition(index_of(workflow, p), after) for p in range(keys.partitions())]
    heap: list[tuple[float, str, int]] = []  # (-score, inverted id order, partition)
    buffers: list[list[tuple[float, str]]] = [[] for _ in parts]

    def refill(which: list[int]) -> None:
        pipe = r.pipeline(transaction=False)
        for i in which:
            parts[i].queue(pipe, batch)
        for i, raw in zip(which, pipe.execute(), strict=True):
            buffers[i] = parts[i].take(raw, batch)
            if buffers[i]:
                score, member = buffers[i].pop(0)
                heapq.heappush(heap, (-score, _Desc(member), i))

    refill(list(range(len(parts))))
    while heap:
        neg, member, i = heapq.heappop(heap)
        yield -neg, str(member)
        if buffers[i]:
            score, nxt = buffers[i].pop(0)
            heapq.heappush(heap, (-score, _Desc(nxt), i))
        elif not parts[i].done:
            refill([i])


class _Desc(str):
    """A run id ordered backwards (the heap pops the greatest id of a score first)."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return isinstance(other, str) and str.__gt__(self, other)


def records(
    r: Any, ids: Iterator[Cursor], want: int, keep: Any, chunk: int = 100
) -> list[tuple[dict[bytes, bytes], Cursor]]:
    """The first ``want`` records (raw hashes, with their cursors) of runs ``ids`` that
    ``keep(raw)`` accepts (a missing record: an empty hash), read ``chunk`` at a time."""
    found: list[tuple[dict[bytes, bytes], Cursor]] = []
    while len(found) < want:
        page = [cursor for _, cursor in zip(range(chunk), ids, strict=False)]
        if not page:
            break
        pipe = r.pipeline(transaction=False)
        for _, run_id in page:
            pipe.hgetall(keys.run(run_id))
        for cursor, raw in zip(page, pipe.execute(), strict=True):
            if raw and keep(raw):
                found.append((raw, cursor))
    return found[:want]
