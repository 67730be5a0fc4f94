"""Registered notebook code on an out-of-process worker: signed code runs, tampered or
unsigned code is refused with a clear log line and a failed run."""

from __future__ import annotations

import pytest

import aiflow_nb
from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.ops.code import register_bundle, register_source
from aiflow_nb.ops.submit import submit
from aiflow_nb.serialization import dumps, loads
from aiflow_nb.store import sync_redis

from support.ops import fleet

CELL = """
from aiflow_nb import component, workflow

@component
def double(x: int) -> int:
    return 2 * x

@workflow
def {name}(x: int) -> int:
    return double(x)
"""


BOOM = """
from aiflow_nb import workflow

@workflow
def nb_boom(x: int) -> int:
    raise ValueError(f"boom from the cell with {x}")
"""


def _bundle(name: str, cell: str = CELL) -> tuple[str, str]:
    source = register_source(cell.format(name=name), f"cell-{name}")
    return register_bundle(name, [source]), source


def test_worker_refuses_tampered_and_unsigned_code_when_a_secret_is_set(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIFLOW_SECRET", "s3cret")
    aiflow_nb.configure()
    good, _ = _bundle("nb_good")
    bad, bad_source = _bundle("nb_bad")
    r = sync_redis()
    doc = loads(r.get(keys.code(bad_source)))
    doc["source"] = doc["source"].replace("2 * x", "x ** 10")  # tampered, digest kept
    r.set(keys.code(bad_source), dumps(doc))
    forged, _ = _bundle("nb_forged")
    boom, _ = _bundle("nb_boom", BOOM.replace("{", "{{").replace("}", "}}"))
    monkeypatch.delenv("AIFLOW_SECRET")
    aiflow_nb.configure()
    unsigned, _ = _bundle("nb_unsigned")  # registered by a process without the secret
    evil = register_source(CELL.format(name="nb_forged").replace("2 * x", "-x"), "evil")
    doc = loads(r.get(keys.code(forged)))
    doc["sources"] = [evil]  # the bundle now points at other code, its signature kept
    r.set(keys.code(forged), dumps(doc))

    runs = {
        name: RunHandle(submit(name, {"x": 21}, code=bundle))
        for name, bundle in (
            ("nb_good", good),
            ("nb_bad", bad),
            ("nb_forged", forged),
            ("nb_unsigned", unsigned),
            ("nb_boom", boom),
        )
    }
    with fleet(tmp_path) as start:
        worker = start("--burst", env={"AIFLOW_SECRET": "s3cret"})
        assert worker.wait(30) == 0

    assert runs["nb_good"].result(timeout=1) == 42
    # the worker ran the cell's source as its own module: tracebacks show the cell's lines
    trace = runs["nb_boom"].record()["error"]["traceback"]
    assert "<aiflow-code cell-nb_boom" in trace
    assert 'raise ValueError(f"boom from the cell with {x}")' in trace
    for name in ("nb_bad", "nb_forged", "nb_unsigned"):
        rec = runs[name].record()
        assert rec["status"] == "failed" and rec["error"]["type"] == "CodeRejected"
    assert "does not match its digest (tampered)" in runs["nb_bad"].record()["error"]["message"]
    assert "bad signature" in runs["nb_forged"].record()["error"]["message"]
    assert "is unsigned" in runs["nb_unsigned"].record()["error"]["message"]
    log = worker.log()
    assert f"run {runs['nb_bad'].run_id} of workflow nb_bad failed before it started" in log
    assert "refusing to run it" in log and "tampered" in log
