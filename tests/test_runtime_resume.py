"""Durable replay: a run killed with SIGKILL mid-way resumes from its journal."""

from __future__ import annotations

import os
import signal
import time

import pytest

import aiflow_nb as af
from aiflow_nb import keys
from aiflow_nb.store import sync_redis

from apps.core_app import crashable, effects
from support.processes import python_subprocess

FAST_HEARTBEAT = {
    "AIFLOW_HEARTBEAT_TTL": "1",
    "AIFLOW_HEARTBEAT_INTERVAL": "0.25",
    "AIFLOW_LOCAL_WORKER": "1",
}


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigkilled_run_resumes_and_journaled_steps_run_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = python_subprocess(
        "from apps.core_app import crashable\n"
        "h = crashable.start(steps=6, delay=0.25)\n"
        "print(h.run_id, flush=True)\n"
        "h.result(timeout=60)\n",
        env=FAST_HEARTBEAT,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read() if proc.stderr else ""
        wait_for(lambda: effects("step3") >= 1, what="step 3 to start")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # closes its pipes
    r = sync_redis()
    journaled = {k.decode() for k in r.hkeys(keys.run_journal(run_id))}
    assert {"crashable/slow_step#0", "crashable/slow_step#1", "crashable/slow_step#2"} <= journaled
    assert "crashable/slow_step#5" not in journaled
    handle = af.attach(run_id)
    assert handle.status == "running"  # nobody told Redis the worker died
    with pytest.raises(af.RunStateError, match="still held"):
        af.resume(run_id)
    wait_for(lambda: r.get(keys.run_lease(run_id)) is None, what="the dead worker's lease")

    for name, value in FAST_HEARTBEAT.items():
        monkeypatch.setenv(name, value)
    af.configure()
    assert af.resume(run_id).result(timeout=30) == [0, 10, 20, 30, 40, 50]

    for i in range(6):
        step = f"crashable/slow_step#{i}"
        if step in journaled:
            assert effects(f"step{i}") == 1, f"journaled step {i} ran again"
        else:
            assert effects(f"step{i}") in (1, 2), f"step {i}: at-least-once, at most twice"
    assert sum(effects(f"step{i}") for i in range(6)) <= 6 + 1  # only the in-flight step twice
    events = list(handle.events())
    types = [e.type for e in events]
    assert types.count("run.resumed") == 1 and types[-1] == "run.completed"
    replayed = {e.data["key"] for e in events if e.type == "span.replayed"}
    assert replayed == journaled
    ids = [e.id for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == len(ids)
    frame = handle.to_pandas()
    assert frame[frame.name == "slow_step"].replayed.sum() == len(journaled)


def test_replay_that_takes_a_different_path_says_so() -> None:
    handle = crashable.start(steps=2, delay=0)
    assert handle.result(timeout=10) == [0, 10]
    r = sync_redis()
    # pretend the journal recorded other arguments for step 0, then force a resume
    raw = r.hget(keys.run_journal(handle.run_id), "crashable/slow_step#0")
    assert raw is not None
    tampered = raw.replace(b'"h":"', b'"h":"x')
    r.hset(keys.run_journal(handle.run_id), "crashable/slow_step#0", tampered)
    r.hset(keys.run(handle.run_id), "status", "failed")
    assert af.resume(handle.run_id).result(timeout=10) == [0, 10]
    logs = [e for e in handle.events() if e.type == "log"]
    assert logs and "replay diverged at step crashable/slow_step#0" in logs[0].data["message"]
    assert effects("step0") == 2 and effects("step1") == 1


def test_resume_right_after_a_failed_result_waits_for_the_lease() -> None:
    """Regression: resume() straight after result() raised RunStateError ('still held')
    because the worker releases its lease just after writing the final status."""
    attempts = {"n": 0}

    @af.component
    def first_time_fails() -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("outage")
        return "ok"

    @af.workflow
    def wf_outage() -> str:
        return first_time_fails()

    for _ in range(5):
        attempts["n"] = 0
        handle = wf_outage.start()
        with pytest.raises(af.RunFailed):
            handle.result(timeout=10)
        assert af.resume(handle.run_id).result(timeout=10) == "ok"
