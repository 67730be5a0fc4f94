"""A crashed-and-resumed run as the trace layer sees it: a real worker process is killed
(SIGKILL) mid-step, the run resumes on another worker, journaled steps replay."""

from __future__ import annotations

import signal
import time

import aiflow_nb
from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.errors import RunStateError
from aiflow_nb.events.reader import read_events
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis
from aiflow_nb.trace import RunIndex, SpanTree

from support.processes import python_subprocess
from support.trace import open_gate, two_steps, wait_for

WORKER = """
import asyncio, support.trace
from aiflow_nb.ops.worker import Worker
asyncio.run(Worker(monitor=False).serve())
"""


def _tree(run_id: str) -> SpanTree:
    return SpanTree.from_events(read_events(run_id, follow=False))


def test_crashed_and_resumed_run_shows_interrupted_replayed_and_resumed() -> None:
    gate = f"crash{time.time_ns()}"
    env = {
        "AIFLOW_HEARTBEAT_INTERVAL": "0.2",
        "AIFLOW_HEARTBEAT_TTL": "1",
    }
    worker = python_subprocess(WORKER, env)
    try:
        handle = RunHandle(submit(two_steps.name, two_steps.bind_inputs({"gate": gate})))
        wait_for(
            lambda: [
                s
                for s in _tree(handle.run_id).spans.values()
                if s.key and s.key.endswith("leaf#1") and s.status == "running"
            ],
            timeout=30,
            what="step 1 running in the worker process",
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=10)  # reaps it and closes its pipes
    crashed = _tree(handle.run_id)
    assert crashed.status == "running" and len(crashed.running()) == 2  # root + step 1
    open_gate(gate)
    wait_for(lambda: not sync_redis().exists(keys.run_lease(handle.run_id)), what="lease gone")
    ensure_local_worker(force=True)
    try:
        aiflow_nb.resume(handle.run_id)
    except RunStateError:
        pass  # the in-process worker's monitor recovered it first
    assert handle.result(timeout=20) == [0, 1]
    tree = _tree(handle.run_id)
    rows = {r.label: r for r in tree.rows()}
    assert tree.totals.resumes >= 1 and tree.status == "completed"
    assert tree.totals.replayed == 1
    assert rows["leaf [0]"].markers == "replayed" and rows["leaf [0]"].status == "completed"
    assert rows["leaf [1]"].status == "completed"
    assert "interrupted ×1" in rows["leaf [1]"].markers
    table = RunIndex().refresh()
    row = table.set_index("run_id").loc[handle.run_id]
    assert (row["status"], row["spans"], row["errors"]) == ("completed", 3, 0)
