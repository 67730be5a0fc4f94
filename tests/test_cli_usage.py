"""The ``aiflow`` command as people use it: the real console script in a subprocess, on
this test's Redis and namespace. ``--version``; bad input is a usage error (exit 2, no
traceback); listings have a header row and aligned columns, or ``--json``; exit codes say
how a run ended; Redis unreachable is one sentence ending in one full stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aiflow_nb as af
from aiflow_nb.cli.core import RUN_FIELDS
from aiflow_nb.cli.worker import DEPLOYMENT_FIELDS
from aiflow_nb.events.status import RECORDED
from aiflow_nb.version import __version__

from support.cli import aiflow, usage_error
from support.ops import wait_for


@af.workflow
def cli_ok(n: int) -> int:
    return n * 2


@af.workflow
def cli_boom() -> None:
    raise RuntimeError("boom")


@af.workflow
async def cli_slow() -> None:
    import asyncio

    await asyncio.sleep(30)


def test_version() -> None:
    done = aiflow("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"aiflow, version {__version__}"


def test_bad_options_are_usage_errors_never_tracebacks() -> None:
    assert "-3 is not in the range x>=1" in usage_error(aiflow("runs", "--limit", "-3"))
    assert "'many' is not a valid integer" in usage_error(aiflow("runs", "--limit", "many"))
    weird = usage_error(aiflow("runs", "--status", "weird"))
    assert "'weird' is not one of " + ", ".join(f"'{s}'" for s in RECORDED) in weird
    assert "No such command 'bogus'" in usage_error(aiflow("bogus"))
    assert "--concurrency" in usage_error(aiflow("worker", "--concurrency", "0"))
    assert "Missing argument 'RUN_ID'" in usage_error(aiflow("attach"))
    for command in ("viewer", "api", "fake-llm"):
        assert "99999 is not in the range 0<=x<=65535" in usage_error(
            aiflow(command, "--port", "99999")
        )
    assert "--older-than must be a positive duration" in usage_error(
        aiflow("prune", "--older-than", "soon")
    )
    assert "--since must be a duration" in usage_error(
        aiflow("archive", "--to", "out", "--since", "next tuesday")
    )
    assert "give a RUN_ID, or --follow" in usage_error(
        aiflow("export", "otlp", "--endpoint", "http://127.0.0.1:9")
    )


def test_non_utf8_arguments_are_a_clear_usage_error() -> None:
    err = usage_error(aiflow("attach", b"run-\xff"))
    assert "argument 'run-\\xff' is not valid UTF-8" in err


def test_help_documents_the_exit_codes() -> None:
    done = aiflow("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "Exit codes: 0 done" in text and "3 attach: the run failed" in text
    assert "4 attach: the run was cancelled" in text


def test_runs_has_a_header_and_aligned_columns_and_json() -> None:
    good = cli_ok.start(n=21)
    bad = cli_boom.start()
    good.wait(20), bad.wait(20)
    done = aiflow("runs")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["RUN_ID", "WORKFLOW", "STATUS", "CREATED", "DURATION"]
    assert [r.split()[0] for r in rows] == [bad.run_id, good.run_id]
    for name in ("WORKFLOW", "STATUS", "CREATED"):  # each column starts where its header does
        at = header.index(name)
        assert all(r[at - 2 : at] == "  " and r[at] != " " for r in rows), (name, rows)
    assert all(len(r) == len(header) for r in rows)  # DURATION right-aligned under its header
    assert rows[0].split()[1:3] == ["cli_boom", "failed"]

    doc = json.loads(aiflow("runs", "--json").stdout)
    assert list(doc) == ["runs"]
    assert [list(r) for r in doc["runs"]] == [list(RUN_FIELDS)] * 2
    first, second = doc["runs"]
    assert (first["run_id"], first["status"]) == (bad.run_id, "failed")
    assert first["error"].endswith("RuntimeError: boom")
    assert (second["status"], second["error"], second["waiting"]) == ("completed", None, None)
    assert isinstance(second["created_at"], float) and second["duration"] >= 0
    assert json.loads(aiflow("runs", "--json", "--status", "waiting").stdout) == {"runs": []}
    assert aiflow("runs", "--status", "waiting").stdout == "no runs\n"


def test_attach_exits_with_how_the_run_ended() -> None:
    good, bad, slow = cli_ok.start(n=1), cli_boom.start(), cli_slow.start()
    wait_for(lambda: slow.status == "running", 20, "the slow run to start")
    slow.cancel()
    assert slow.wait(20) == "cancelled"
    good.wait(20), bad.wait(20)
    completed, failed, cancelled = (aiflow("attach", h.run_id) for h in (good, bad, slow))
    assert completed.returncode == 0 and "run.completed" in completed.stdout
    assert failed.returncode == 3 and "run.failed" in failed.stdout
    assert cancelled.returncode == 4 and "run.cancelled" in cancelled.stdout
    missing = aiflow("attach", "nope")
    assert missing.returncode == 1 and missing.stderr == "error: no run with id 'nope'\n"


def test_cancel_of_a_finished_run_says_so_and_exits_1() -> None:
    handle = cli_ok.start(n=2)
    assert handle.result(timeout=20) == 4
    done = aiflow("cancel", handle.run_id)
    assert done.returncode == 1
    assert (
        done.stderr == f"error: run {handle.run_id} already ended (completed); nothing to cancel\n"
    )
    assert handle.status == "completed"
    slow = cli_slow.start()
    wait_for(lambda: slow.status == "running", 20, "the slow run to start")
    ok = aiflow("cancel", slow.run_id)
    assert (ok.returncode, ok.stdout) == (0, "cancelling\n")
    assert slow.wait(20) == "cancelled"
    again = aiflow("cancel", slow.run_id)  # cancelled already: what was asked holds
    assert (again.returncode, again.stdout) == (0, "cancelled\n")


def test_redis_unreachable_is_one_sentence_with_one_full_stop(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no-redis.sock"
    for args in (("runs",), ("attach", "x"), ("cancel", "x"), ("workers",)):
        done = aiflow(*args, REDIS_URL=url)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith(f"error: cannot reach Redis at {url}: ")
        assert "Traceback" not in done.stderr
        assert done.stderr.endswith("(see `aiflow redis status`).\n")
        assert ".." not in done.stderr and ". ." not in done.stderr


def test_worker_names_the_version_it_serves_and_listings_have_json() -> None:
    assert aiflow("deploy", "v7").returncode == 0
    done = aiflow("worker", "--burst", "--no-monitor")
    assert done.returncode == 0, done.stderr
    assert " serving version v7: " in done.stderr
    assert "from the deployment" not in done.stderr
    doc = json.loads(aiflow("deployments", "--json").stdout)
    assert [list(r) for r in doc["deployments"]] == [list(DEPLOYMENT_FIELDS)]
    assert doc["deployments"][0]["version"] == "v7" and doc["deployments"][0]["active"] is True
    assert json.loads(aiflow("workers", "--json").stdout) == {"workers": []}


@pytest.mark.parametrize("command", ["runs", "workers", "deployments"])
def test_json_listings_are_one_document_even_when_empty(command: str) -> None:
    done = aiflow(command, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {command: []}
