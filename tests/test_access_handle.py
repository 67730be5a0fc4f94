"""RunHandle and listings: status, result, cancel, runs(), attach from another process."""

from __future__ import annotations

import asyncio
import threading

import pytest
from click.testing import CliRunner

import aiflow_nb as af
from aiflow_nb import component, workflow
from aiflow_nb.cli import cli

from support.helpers import wait_for
from support.processes import python_subprocess


@component
async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@workflow
async def napping(seconds: float) -> float:
    return await nap(seconds)


def test_cancel_a_running_run_ends_it_cancelled() -> None:
    handle = napping.start(seconds=30)
    for event in handle.events():
        if event.type == "span.started" and event.name == "nap":
            break
    assert handle.cancel() == "cancelling"
    with pytest.raises(af.RunCancelled):
        handle.result(timeout=10)
    types = [e.type for e in handle.events()]
    assert types[-1] == "run.cancelled"
    assert next(s for s in handle.spans() if s.name == "nap").status == "cancelled"


def test_cancel_a_queued_run_ends_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFLOW_LOCAL_WORKER", "0")
    af.configure()
    handle = napping.start(seconds=0)
    assert handle.status == "queued"
    assert handle.cancel() == "cancelled"
    assert handle.status == "cancelled" and handle.cancel() == "cancelled"


def test_result_times_out_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFLOW_LOCAL_WORKER", "0")
    af.configure()
    handle = napping.start(seconds=0)
    with pytest.raises(TimeoutError, match="still queued"):
        handle.result(timeout=0.2)


def test_result_follows_on_when_a_failed_run_was_resumed_before_it_looked() -> None:
    """The handle ``start()`` gave follows on from the run's ``run.queued``: it reads the
    first attempt's ``run.failed`` then finds the run resumed, and waits for its real end
    (it raised ``RunFailed`` without an error before)."""
    go_on = threading.Event()
    attempts: list[int] = []

    @workflow
    def fails_once() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        go_on.wait(30)
        return "second attempt"

    handle = fails_once.start()
    other = af.attach(handle.run_id)
    assert other.wait(timeout=30) == "failed"
    other.resume()
    wait_for(lambda: other.status == "running", 10, "the resumed run to start")
    threading.Timer(0.5, go_on.set).start()
    assert handle.result(timeout=30) == "second attempt"
    assert len(attempts) == 2


def test_runs_lists_newest_first_with_filters() -> None:
    done = [napping.start(seconds=0) for _ in range(3)]
    for h in done:
        h.result(timeout=10)
    frame = af.runs(workflow="napping")
    assert list(frame.run_id) == [h.run_id for h in reversed(done)]
    assert set(frame.status) == {"completed"}
    assert af.runs(status="failed").empty
    assert len(af.runs(limit=2)) == 2
    with pytest.raises(ValueError, match="status must be one of queued, .*; got 'complete'"):
        af.runs(status="complete")  # a typo is refused, not an empty listing
    typo = CliRunner().invoke(cli, ["runs", "--status", "complete"])
    assert typo.exit_code == 2 and "'complete' is not one of 'queued'" in typo.output


def test_attach_from_another_process_sees_the_full_history() -> None:
    handle = napping.start(seconds=0.3)
    proc = python_subprocess(
        "import aiflow_nb as af\n"
        f"h = af.attach('{handle.run_id}')\n"
        "print(' '.join(e.type for e in h.events()))\n"
        "print(h.result())\n"
    )
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    types, result = out.strip().splitlines()
    assert types.split()[0] == "run.queued" and types.split()[-1] == "run.completed"
    assert float(result) == 0.3


def test_cli_runs_attach_resume_cancel() -> None:
    handle = napping.start(seconds=0)
    handle.result(timeout=10)
    runner = CliRunner()
    listed = runner.invoke(cli, ["runs", "--workflow", "napping"])
    assert listed.exit_code == 0 and handle.run_id in listed.output
    attached = runner.invoke(cli, ["attach", handle.run_id])
    assert attached.exit_code == 0 and "run.completed" in attached.output
    missing = runner.invoke(cli, ["attach", "nope"])
    assert missing.exit_code == 1 and "no run with id 'nope'" in missing.output
    refused = runner.invoke(cli, ["resume", handle.run_id])
    assert refused.exit_code == 1 and "completed" in refused.output
    finished = runner.invoke(cli, ["cancel", handle.run_id])  # ended already: says so
    assert finished.exit_code == 1 and "already ended (completed)" in finished.output
