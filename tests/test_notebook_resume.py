"""``%aiflow resume RUN_ID`` and ``%aiflow cancel RUN_ID`` through IPython's
InteractiveShell, in process, with the in-kernel worker; and the runs table, ``aiflow
runs`` and the text snapshot saying why a run waits."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError

from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.authoring import registry
from aiflow_nb.cli import cli
from aiflow_nb.notebook.display import snapshot_text
from aiflow_nb.ops.submit import submit
from aiflow_nb.store import sync_redis
from aiflow_nb.trace.runtable import RunIndex

from support.notebook import run_cell, shell_fixture  # noqa: F401

FLAKY = """
import aiflow_nb as af
calls = []
broken = True

@af.component
def step(i: int) -> int:
    calls.append(i)
    return i

@af.workflow
def flaky(n: int) -> int:
    total = step(1) + step(2)
    if broken:
        raise RuntimeError("not yet")
    return total + n
"""


@pytest.fixture
def flaky(shell: Any) -> Any:
    assert run_cell(shell, FLAKY).success
    yield shell
    registry.unregister("flaky")


def test_resume_continues_a_failed_run_from_its_journal(flaky: Any) -> None:
    handle = flaky.user_ns["flaky"].start(n=10)
    assert handle.wait(10) == "failed"
    flaky.user_ns["broken"] = False
    resumed = flaky.run_line_magic("aiflow", f"resume {handle.run_id}")
    assert isinstance(resumed, RunHandle) and resumed.run_id == handle.run_id
    assert resumed.result(timeout=10) == 13
    assert flaky.user_ns["calls"] == [1, 2]  # the steps replayed from the journal
    assert resumed.record()["attempt"] == 2


def test_resume_refuses_a_completed_run(flaky: Any) -> None:
    flaky.user_ns["broken"] = False
    handle = flaky.user_ns["flaky"].start(n=1)
    assert handle.result(timeout=10) == 4
    with pytest.raises(UsageError, match="only unfinished runs resume"):
        flaky.run_line_magic("aiflow", f"resume {handle.run_id}")


def test_resume_of_a_queued_run_starts_a_worker_and_queues_it_no_second_time(
    shell: Any,
) -> None:
    handle = RunHandle(submit("later", {}))
    assert handle.waiting is not None
    queue = keys.queue(handle.record()["version"], "later", 0)
    [(queued, _)] = sync_redis().xrange(queue)
    assert "no live worker serves workflow 'later'" in snapshot_text(handle)
    assert run_cell(
        shell, "import aiflow_nb as af\n@af.workflow\ndef later() -> int:\n    return 7"
    )
    try:
        shell.run_line_magic("aiflow", f"resume {handle.run_id}")
        assert handle.result(timeout=10) == 7
        assert handle.record()["attempt"] == 1  # it ran once: queued once
        # no entry was added after the first (the worker may not have deleted that one yet)
        assert sync_redis().xinfo_stream(queue)["last-generated-id"] == queued
    finally:
        registry.unregister("later")


def test_cancel_cancels_a_queued_run(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    handle = RunHandle(submit("nobody_serves_this", {}))
    capsys.readouterr()
    shell.run_line_magic("aiflow", f"cancel {handle.run_id}")
    assert capsys.readouterr().out.strip() == f"run {handle.run_id}: cancelled"
    assert handle.status == "cancelled"


def test_runs_table_and_aiflow_runs_say_why_a_run_waits() -> None:
    handle = RunHandle(submit("nobody_serves_this", {}))
    reason = handle.waiting
    assert reason and reason.startswith("no live worker serves workflow 'nobody_serves_this'")
    frame = RunIndex().refresh()
    assert frame.set_index("run_id").loc[handle.run_id, "note"] == reason
    out = CliRunner().invoke(cli, ["runs"]).output
    assert f"waiting: {reason}" in out
