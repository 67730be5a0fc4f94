"""Blue/green: runs are pinned to the version that started them; ``aiflow deploy`` moves new
runs to another version while runs in flight finish on their own workers."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiflow_nb.access.handle import RunHandle
from aiflow_nb.cli import cli
from aiflow_nb.ops.deployments import active_version, deploy, deployments
from aiflow_nb.ops.submit import submit

from support.ops import fleet, record, running_on, wait_for


def test_deploy_v2_sends_new_runs_to_v2_while_v1_runs_finish_on_v1(tmp_path: Path) -> None:
    runner = CliRunner()
    deploy("v1")
    with fleet(tmp_path) as start:
        blue = start("--version", "v1").ready()
        old = [RunHandle(submit("steps", {"n": 6, "delay": 0.5})) for _ in range(2)]
        for h in old:
            wait_for(lambda h=h: running_on(h.run_id, blue.id), 15, "v1 runs on the v1 worker")

        result = runner.invoke(cli, ["deploy", "v2"])
        assert result.exit_code == 0, result.output
        assert "new runs go to v2 (was v1)" in result.output
        assert "no live worker serves v2" in result.output
        new = [RunHandle(submit("steps", {"n": 2, "delay": 0.1})) for _ in range(2)]

        rows = {row["version"]: row for row in deployments()}
        assert rows["v2"]["active"] and not rows["v1"]["active"]
        assert (rows["v1"]["workers"], rows["v1"]["running"]) == (1, 2)
        assert (rows["v2"]["workers"], rows["v2"]["queued"]) == (0, 2)  # not taken by v1
        table = runner.invoke(cli, ["deployments"]).output
        assert table.splitlines()[1].split() == ["*", "v2", "0", "0", "0", "2"]
        green = start("--version", "v2").ready()

        assert [h.result(timeout=20) for h in old] == [list(range(6))] * 2
        assert [h.result(timeout=20) for h in new] == [list(range(2))] * 2
        blue.signal(signal.SIGTERM)  # nothing left on v1: it drains at once
        assert blue.wait(10) == 0

    assert {(record(h.run_id)["version"], record(h.run_id)["worker"]) for h in old} == {
        ("v1", blue.id)
    }
    assert {(record(h.run_id)["version"], record(h.run_id)["worker"]) for h in new} == {
        ("v2", green.id)
    }
    assert active_version() == "v2"


def test_deploy_rejects_a_malformed_version() -> None:
    with pytest.raises(ValueError, match="deployment version"):
        deploy("v 2")
    result = CliRunner().invoke(cli, ["deploy", "a:b"])
    assert result.exit_code == 1 and "deployment version" in result.output
