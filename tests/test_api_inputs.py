"""Answering parked runs over REST (``POST /runs/{id}/input/{name}``) and from the
``aiflow respond`` command: a real uvicorn server in a thread, a real ``aiflow worker``
process, real Redis. Refusals: 422 naming the field, 409 for a second answer, 404 for an
unknown run or wait, 403 for a token without the respond scope."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiflow_nb import RunHandle
from aiflow_nb.api.auth import key_id
from aiflow_nb.events.status import RunStatus
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops.submit import submit

from support import PYTHONPATH
from support.api import KEY, served_client
from support.ops import fleet, wait_for


@pytest.fixture
def http(namespace: str) -> Iterator[httpx.Client]:
    with served_client(api_keys=(KEY,)) as c:
        yield c


def _parked(handle: RunHandle) -> None:
    wait_for(lambda: handle.status == RunStatus.WAITING, 20, "the run to park")


def _received(handle: RunHandle) -> list[dict[str, object]]:
    return [e.data for e in handle.events(follow=False) if e.type == "input.received"]


def test_rest_lists_the_open_wait_and_its_answer_resumes_the_run(
    http: httpx.Client, tmp_path: Path
) -> None:
    handle = RunHandle(submit("approval", {}))
    with fleet(tmp_path) as start:
        start().ready()
        _parked(handle)
        doc = http.get(f"/runs/{handle.run_id}").json()
        assert doc["status"] == "waiting"
        [wait] = doc["waits"]
        assert (wait["name"], wait["kind"], wait["prompt"]) == ("approve", "input", "Approve?")
        assert wait["schema"] == {"type": "boolean"} and wait["deadline"] is None
        listed = http.get("/runs", params={"status": "waiting"}).json()["runs"]
        assert [r["run_id"] for r in listed] == [handle.run_id]

        url = f"/runs/{handle.run_id}/input/approve"
        bad = http.post(url, json="yes")
        assert bad.status_code == 422, bad.text
        assert bad.json()["fields"] == [
            {"field": "value", "message": "'yes' is not of type 'boolean'"}
        ]
        assert http.post(url, content=b"{nope").status_code == 400
        assert http.post(f"/runs/{handle.run_id}/input/other", json=True).status_code == 404
        assert http.post("/runs/nosuchrun/input/approve", json=True).status_code == 404
        assert httpx.post(f"{http.base_url}{url}", json=True).status_code == 401  # no key
        assert handle.status == RunStatus.WAITING  # every refusal left it parked

        ok = http.post(url, json=True)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"run_id": handle.run_id, "name": "approve", "status": "queued"}
        again = http.post(url, json=False)
        assert again.status_code == 409 and again.json()["error"] == "already_answered"
        assert handle.result(timeout=20) == {"answer": True}
        feed = http.get(f"/runs/{handle.run_id}/events", params={"format": "ndjson"})
        docs = [json.loads(line) for line in feed.text.splitlines() if line.strip()]
        parked = next(d for d in docs if d["type"] == "run.waiting")  # a web UI can build
        assert parked["data"]["schema"] == {"type": "boolean"}  # its form from the stream
        assert [d["type"] for d in docs].count("input.received") == 1
    assert _received(handle) == [
        {"name": "approve", "kind": "input", "by": f"api {key_id(KEY)}", "value": True}
    ]
    assert side_effects(handle.run_id) == {"approval/step#0": 1, "approval/step#1": 1}


def test_a_run_token_answers_only_with_the_respond_scope(
    http: httpx.Client, tmp_path: Path
) -> None:
    handle = RunHandle(submit("approval", {}))
    with fleet(tmp_path) as start:
        start().ready()
        _parked(handle)
        url = f"{http.base_url}/runs/{handle.run_id}/input/approve"
        read = http.post(f"/runs/{handle.run_id}/token").json()["token"]
        refused = httpx.post(url, json=True, headers={"Authorization": f"Bearer {read}"})
        assert refused.status_code == 403 and refused.json()["error"] == "token_scope"
        token = http.post(f"/runs/{handle.run_id}/token", params={"respond": "true"}).json()
        other = RunHandle(submit("approval", {}))
        _parked(other)
        elsewhere = f"{http.base_url}/runs/{other.run_id}/input/approve"
        auth = {"Authorization": f"Bearer {token['token']}"}
        assert httpx.post(elsewhere, json=True, headers=auth).status_code == 403
        assert httpx.post(url, json=False, headers=auth).status_code == 200
        assert handle.result(timeout=20) == {"answer": False}
        assert other.status == RunStatus.WAITING
    assert _received(handle)[0]["by"] == "api token"


def test_openapi_documents_the_input_endpoint(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    op = spec["paths"]["/runs/{run_id}/input/{name}"]["post"]
    assert {"200", "404", "409", "422"} <= set(op["responses"])
    assert "application/json" in op["requestBody"]["content"]


def test_the_cli_answers_a_parked_run(tmp_path: Path) -> None:
    """``aiflow respond RUN_ID NAME JSON`` in a process of its own; an invalid answer
    exits 1 saying why."""
    handle = RunHandle(submit("approval", {}))
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    cli = [sys.executable, "-c", "from aiflow_nb.cli import main; main()", "respond"]
    with fleet(tmp_path) as start:
        start().ready()
        _parked(handle)
        bad = subprocess.run(
            [*cli, handle.run_id, "approve", '"yes"'], env=env, capture_output=True, text=True
        )
        assert bad.returncode == 1
        assert "'yes' is not of type 'boolean'" in bad.stderr
        done = subprocess.run(
            [*cli, handle.run_id, "approve", "true"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert handle.result(timeout=20) == {"answer": True}
        twice = subprocess.run(
            [*cli, handle.run_id, "approve", "true"], env=env, capture_output=True, text=True
        )
        assert twice.returncode == 1 and "answered already" in twice.stderr
    assert _received(handle)[0]["by"] == "cli"
    assert JOURNALED_TWICE not in side_effects(handle.run_id)


def test_the_cli_sends_a_signal(tmp_path: Path) -> None:
    handle = RunHandle(submit("signalled", {}))
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    cli = [sys.executable, "-c", "from aiflow_nb.cli import main; main()", "send"]
    with fleet(tmp_path) as start:
        start().ready()
        _parked(handle)
        early = subprocess.run(
            [*cli, handle.run_id, "stop"], env=env, capture_output=True, text=True
        )
        assert early.returncode == 1 and "no open wait named 'stop'" in early.stderr
        done = subprocess.run(
            [*cli, handle.run_id, "go", '{"n": 1}'], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert handle.result(timeout=20) == {"n": 1}
    assert _received(handle) == [{"name": "go", "kind": "event", "by": "cli", "value": {"n": 1}}]
