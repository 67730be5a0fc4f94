"""``%aiflow rerun`` in IPython's real shell with the extension loaded: a redefined
``%%component`` cell executes again with what it feeds; the rest replays, and the run's
display says which run each replayed step comes from."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from aiflow_nb.errors import InvalidInputs, RunNotFound

from support.notebook import run_cell, shell_fixture  # noqa: F401

LOAD = "%%component load\ndef load(x: int) -> int:\n    return x + 1\n"
SHAPE = "%%component shape\ndef shape(y: int) -> str:\n    return f'v1:{y}'\n"
TAIL = "%%component tail\ndef tail(s: str) -> str:\n    return s.upper()\n"
PIPE = "%%workflow pipe\ndef pipe(x: int) -> str:\n    return tail(shape(load(x)))\n"


def _replayed(handle: Any) -> dict[str, str | None]:
    return {s.name: s.replayed_from for s in handle.spans() if s.replayed}


def _source(shell: Any) -> Any:
    for cell in (LOAD, SHAPE, TAIL, PIPE):
        assert run_cell(shell, cell).error_in_exec is None
    handle = shell.run_line_magic("aiflow", "run pipe x=1")
    assert handle.result(timeout=20) == "V1:2"
    return handle


def test_rerun_after_redefining_a_component_executes_it_and_what_it_feeds(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _source(shell)
    run_cell(shell, SHAPE.replace("v1:", "v2:"))
    capsys.readouterr()
    second = run_cell(shell, f"%aiflow rerun {first.run_id}").result
    assert second.result(timeout=20) == "V2:2"
    assert second.record()["forked_from"] == first.run_id
    assert _replayed(second) == {"load": first.run_id}  # shape changed, tail gets new input
    assert capsys.readouterr().out.count(f"run {second.run_id}") == 1  # shown, once
    shell.run_line_magic("aiflow", f"attach {second.run_id}")  # its tree, now it ended
    out = capsys.readouterr().out
    load_row = next(line for line in out.splitlines() if "load" in line and "✓" in line)
    assert load_row.endswith(f"[replayed from {first.run_id}]")
    shape_row = next(line for line in out.splitlines() if "shape" in line and "✓" in line)
    assert "replayed" not in shape_row


def test_rerun_steps_and_inputs(shell: Any) -> None:
    first = _source(shell)
    named = shell.run_line_magic("aiflow", f"rerun {first.run_id} --steps tail")
    assert named.result(timeout=20) == "V1:2"
    assert _replayed(named) == {"load": first.run_id, "shape": first.run_id}
    fresh = shell.run_line_magic("aiflow", f"rerun {first.run_id} --steps=load x=4")
    assert fresh.result(timeout=20) == "V1:5" and fresh.record()["inputs"] == {"x": 4}
    assert _replayed(fresh) == {}


def test_rerun_magic_errors_are_clear(shell: Any) -> None:
    with pytest.raises(UsageError, match="usage: %aiflow rerun"):
        shell.run_line_magic("aiflow", "rerun")
    with pytest.raises(UsageError, match="--steps names no step"):
        shell.run_line_magic("aiflow", "rerun abc --steps ,")
    with pytest.raises(UsageError, match="unknown option '--nope'"):
        shell.run_line_magic("aiflow", "rerun abc --nope")
    with pytest.raises(RunNotFound):
        shell.run_line_magic("aiflow", "rerun 0123456789abcdef01234567")
    first = _source(shell)
    with pytest.raises(InvalidInputs, match="no step 'nope'"):
        shell.run_line_magic("aiflow", f"rerun {first.run_id} --steps nope")
