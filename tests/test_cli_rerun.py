"""``aiflow rerun``: the real console script in a subprocess queues the rerun; the
in-process worker of this test executes it (they meet only in Redis)."""

from __future__ import annotations

from collections import Counter

import aiflow_nb as af
from aiflow_nb.ops.local import ensure_local_worker, stop_local_worker
from aiflow_nb.ops.submit import submit

from support.cli import aiflow, usage_error

RAN: Counter[str] = Counter()


@af.component
def cr_load(x: int) -> int:
    RAN["cr_load"] += 1
    return x + 1


@af.component
def cr_shape(y: int) -> str:
    RAN["cr_shape"] += 1
    return f"shape:{y}"


@af.workflow
def cli_rerun_chain(x: int, label: str = "a") -> str:
    return f"{label}:{cr_shape(cr_load(x))}"


def _finished(**inputs: object) -> str:
    RAN.clear()
    handle = cli_rerun_chain.start(**inputs)
    handle.result(timeout=20)
    return handle.run_id


def test_rerun_prints_the_new_run_id_and_executes_only_the_named_step(namespace: str) -> None:
    source = _finished(x=1)
    done = aiflow("rerun", source, "--steps", "cr_shape")
    assert done.returncode == 0, done.stderr
    new_id = done.stdout.strip()
    assert new_id != source and f"aiflow attach {new_id}" in done.stderr
    ensure_local_worker(force=True)
    handle = af.attach(new_id)
    assert handle.result(timeout=20) == "a:shape:2"
    assert handle.record()["forked_from"] == source
    assert RAN == Counter(cr_load=1, cr_shape=2)


def test_rerun_with_inputs_and_follow_exits_as_the_run_ended(namespace: str) -> None:
    source = _finished(x=1)
    ensure_local_worker(force=True)
    done = aiflow("rerun", source, "--input", "x=4", "--input", "label=b", "--follow")
    assert done.returncode == 0, done.stderr
    new_id = done.stdout.splitlines()[0]
    assert af.attach(new_id).result(timeout=5) == "b:shape:5"
    assert "completed" in done.stdout
    assert RAN == Counter(cr_load=2, cr_shape=2)


def test_rerun_errors_are_one_line_and_exit_1(namespace: str) -> None:
    unknown = aiflow("rerun", "0123456789abcdef01234567")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert "0123456789abcdef01234567" in unknown.stderr and not unknown.stdout
    source = _finished(x=1)
    bad_step = aiflow("rerun", source, "--steps", "nope")
    assert bad_step.returncode == 1 and "Traceback" not in bad_step.stderr
    assert "nope" in bad_step.stderr and "cr_shape" in bad_step.stderr
    assert RAN == Counter(cr_load=1, cr_shape=1)


def test_a_source_not_finished_is_refused(namespace: str) -> None:
    stop_local_worker()
    run_id = submit("cli_rerun_chain", {"x": 1})  # no worker takes it: it stays queued
    done = aiflow("rerun", run_id)
    assert done.returncode == 1 and "finished" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not done.stdout


def test_malformed_options_are_usage_errors(namespace: str) -> None:
    source = _finished(x=1)
    assert "NAME=VALUE" in usage_error(aiflow("rerun", source, "--input", "x"))
    assert "--steps" in usage_error(aiflow("rerun", source, "--steps", ","))
