"""Routing by capability, on real workers: a worker takes only runs it can execute (the
workflows its process defines, registered code when it accepts it); a run nobody live can
execute stays queued and says why, and continues once someone defines its workflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aiflow_nb as af
from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.authoring import registry
from aiflow_nb.ops.deployments import deployments
from aiflow_nb.ops.local import ensure_local_worker, local_worker
from aiflow_nb.ops.presence import live_workers, process_alive
from aiflow_nb.ops.routing import run_queue, waiting_reason
from aiflow_nb.ops.submit import resume, submit
from aiflow_nb.store import sync_redis
from aiflow_viewer.run_page import RunPage
from aiflow_viewer.style import esc

from support.api import KEY, served_client
from support.helpers import wait_for
from support.ops import FAST, fleet
from support.processes import python_subprocess

AIFLOW = str(Path(sys.executable).parent / "aiflow")

IN_PROCESS_WORKER = """
import time
import aiflow_nb as af
from aiflow_nb.ops.local import ensure_local_worker

@af.workflow
def only_in_this_process(x: int) -> int:
    return x

worker = ensure_local_worker(force=True)
print("READY", worker.worker.id, flush=True)
time.sleep(300)  # until the test kills it
"""
"""Another process with its own workflow and in-process worker, like a notebook kernel."""


def test_queues_are_one_per_version_and_workflow_plus_one_for_registered_code() -> None:
    ns = af.settings().namespace
    assert run_queue("v1", "report", None) == f"{{{ns}:0}}:queue:v1:wf:report"
    assert run_queue("v1", "report", "ab12", partition=3) == f"{{{ns}:3}}:queue:v1:code"
    run_id = submit("report", {}, version="v1")
    r = sync_redis()
    assert r.xrange(keys.queue("v1", "report", 0))[0][1] == {b"run_id": run_id.encode()}
    assert r.smembers(keys.queues("v1", 0)) == {keys.queue("v1", "report", 0).encode()}


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_aiflow_demo_completes_while_other_processes_workers_are_live(tmp_path: Path) -> None:
    """Before routing, the other process's worker took the demo's run and failed it
    ``WorkflowNotFound`` (the issue's report, with a notebook open)."""
    other = python_subprocess(IN_PROCESS_WORKER, env=FAST)
    try:
        with fleet(tmp_path) as start:
            app_worker = start().ready()  # aiflow worker --app aiflow_nb.examples.chaos
            wait_for(
                lambda: any(int(w["pid"]) == other.pid for w in live_workers()),
                30,
                "the other process's in-process worker",
            )
            docs = {int(w["pid"]): w for w in live_workers()}
            assert docs[other.pid]["serves"] == ["only_in_this_process"]
            assert docs[other.pid]["code"] == "all" and docs[other.pid]["kind"] == "in-process"
            assert "content_agent" not in docs[app_worker.pid]["serves"]
            assert "steps" in docs[app_worker.pid]["serves"]
            env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
            proc = subprocess.run(
                [AIFLOW, "demo", "--sections", "2"],
                env=env,
                text=True,
                capture_output=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stderr
            run_id = proc.stdout.split("\nrun ", 1)[1].split()[0]
            rec = RunHandle(run_id).record()
            assert rec["status"] == "completed"
            assert rec["worker"] not in (app_worker.id, docs[other.pid]["id"])
    finally:
        other.kill()
        other.communicate(timeout=10)


def test_a_run_nobody_serves_stays_queued_says_why_and_continues_once_defined() -> None:
    ensure_local_worker(force=True)  # serves this process's workflows and registered code
    handle = RunHandle(submit("defined_later", {"x": 2}))
    time.sleep(1.2)  # a few polls of the worker: it does not take the run
    rec = handle.record()
    assert rec["status"] == "queued"
    expected = f"no live worker serves workflow 'defined_later' (version {rec['version']})"
    assert handle.waiting is not None and handle.waiting.startswith(expected)
    assert f"%aiflow resume {handle.run_id}" in handle.waiting
    with pytest.raises(af.RunTimeout, match="still queued after 0.2 s: no live worker serves"):
        handle.result(timeout=0.2)
    [row] = [d for d in deployments() if d["version"] == rec["version"]]
    assert row["queued"] == 1  # counted over the version's queues
    with served_client(api_keys=(KEY,)) as http:
        doc = http.get(f"/runs/{handle.run_id}").json()
        assert doc["status"] == "queued" and doc["waiting"] == handle.waiting
        listed = http.get("/runs").json()["runs"]
        assert [r["waiting"] for r in listed if r["run_id"] == handle.run_id] == [handle.waiting]
    page = RunPage(handle.run_id, follow=False)  # the dashboard's run page says it too
    page.tick()
    assert page.waiting == handle.waiting
    assert f"waiting: {esc(handle.waiting)}" in page.header.object
    attached = subprocess.Popen(  # and `aiflow attach`, once, while it follows
        [AIFLOW, "attach", handle.run_id], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert attached.stdout is not None
        lines = [attached.stdout.readline() for _ in range(2)]
        assert lines[0].split()[1] == "run.queued"
        assert lines[1] == f"waiting: {handle.waiting}\n"

        @af.workflow
        def defined_later(x: int) -> int:
            return x * 10

        assert handle.result(timeout=10) == 20  # the worker serves it from its next poll
        assert handle.waiting is None
        assert handle.record()["worker"] == local_worker().worker.id  # type: ignore[union-attr]
        rest, _ = attached.communicate(timeout=20)
        assert attached.returncode == 0
        assert "waiting:" not in rest and "run.completed" in rest
        page._waiting_at = 0.0  # the next check is due
        page.tick()
        assert page.waiting is None and "waiting:" not in page.header.object
    finally:
        attached.kill()
        attached.communicate(timeout=10)
        registry.unregister("defined_later")


def test_registered_code_waits_for_a_worker_that_accepts_it() -> None:
    rec = {"status": "queued", "run_id": "r", "version": "default", "workflow": "cell_wf"}
    fresh, resumed = {**rec, "code": "ab12"}, {**rec, "code": "ab12", "attempt": 1}
    reason = waiting_reason(fresh, workers=[])
    assert reason is not None and "registered notebook code" in reason
    code_worker = {"version": "default", "serves": [], "code": "all"}
    assert waiting_reason(fresh, workers=[code_worker]) is None
    assert waiting_reason(rec, workers=[code_worker]) is not None  # not by name
    daemon = {"version": "default", "serves": [], "code": "resumed"}
    assert waiting_reason(fresh, workers=[daemon]) is not None  # a kernel starts it
    assert waiting_reason(resumed, workers=[daemon]) is None  # it ran: the daemon resumes it
    assert run_queue("default", "cell_wf", "ab12", resumed=True) == keys.code_queue(
        "default", True, 0
    )


@pytest.mark.timeout(60)
def test_a_killed_workers_heartbeat_is_not_live_on_its_machine() -> None:
    """The new kernel's status line counted a SIGKILLed kernel's worker as live for the
    rest of its heartbeat TTL."""
    other = python_subprocess(IN_PROCESS_WORKER, env={"AIFLOW_HEARTBEAT_TTL": "30"})
    try:
        doc = wait_for(
            lambda: next((w for w in live_workers() if int(w["pid"]) == other.pid), None),
            30,
            "the other process's worker",
        )
        other.send_signal(signal.SIGKILL)
        other.wait(10)
        assert sync_redis().exists(keys.worker(doc["id"]))  # its heartbeat has not expired
        assert not any(int(w["pid"]) == other.pid for w in live_workers())
    finally:
        other.kill()
        other.communicate(timeout=10)


@pytest.mark.timeout(60)
def test_aiflow_worker_daemon_starts_shows_and_stops_this_machines_code_worker() -> None:
    from click.testing import CliRunner

    from aiflow_nb.cli import cli
    from aiflow_nb.ops.daemon import daemons, log_path, pid_path

    runner = CliRunner()
    assert runner.invoke(cli, ["worker", "daemon"]).output.startswith("no code worker daemon")
    try:
        started = runner.invoke(cli, ["worker", "daemon", "start"]).output
        assert started.startswith("code worker daemon: started\n")
        doc = wait_for(lambda: next(iter(daemons()), None), 30, "the daemon to heartbeat")
        assert doc["code"] == "resumed" and doc["serves"] == [] and doc["kind"] == "daemon"
        again = runner.invoke(cli, ["worker", "daemon", "start"]).output
        assert again.startswith("code worker daemon: running\n")  # one per machine
        assert pid_path(doc["version"]).read_text() == str(doc["pid"])
        status = runner.invoke(cli, ["worker", "daemon", "status"]).output
        assert f"pid {doc['pid']}" in status and str(log_path(doc["version"])) in status
        listed = runner.invoke(cli, ["workers"]).output
        assert "daemon" in listed and "registered code" in listed
        handle = RunHandle(submit("cell_wf", {}, code="no-such-bundle"))
        time.sleep(1.0)
        assert handle.status == "queued"  # a fresh run is for a kernel, not the daemon
        resume(handle.run_id)  # put back on the queue, as after its worker died
        assert handle.wait(10) == "failed"  # taken by the daemon (the bundle is missing)
        assert handle.record()["worker"] == doc["id"]
    finally:
        out = runner.invoke(cli, ["worker", "daemon", "stop"]).output
    assert out == "stopped 1 code worker daemon(s)\n"
    assert daemons() == []
    assert not process_alive(int(doc["pid"]))  # stop waits for the process to exit
    assert not pid_path(doc["version"]).exists()


def test_the_in_process_worker_hands_its_runs_back_when_the_process_exits() -> None:
    """A kernel shutting down (atexit) re-queues its runs at once instead of leaving them
    to its leases; here nobody else serves the workflow, so the run waits and says so."""
    import asyncio

    from aiflow_nb.ops.local import stop_local_worker

    @af.workflow
    async def slow_at_exit(n: int) -> int:
        await asyncio.sleep(30)
        return n

    try:
        handle = slow_at_exit.start(n=1)
        wait_for(lambda: handle.status == "running", 10, "the run to start")
        t0 = time.monotonic()
        stop_local_worker(drain_timeout=0.1)  # what the exit hook does
        assert time.monotonic() - t0 < 5
        assert handle.status == "queued"
        assert any(e.type == "log" and e.data.get("handback") for e in handle.events(follow=False))
        assert handle.waiting is not None and "'slow_at_exit'" in handle.waiting
    finally:
        registry.unregister("slow_at_exit")
