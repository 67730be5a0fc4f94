"""REST API, ``POST /runs/{id}/rerun``: a real uvicorn server in a thread, real Redis, the
in-process worker executing the runs (the API itself never executes one)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

import aiflow_nb as af
from aiflow_nb import component, workflow
from aiflow_nb.ops.local import ensure_local_worker, stop_local_worker

from support.api import KEY, served_client, wait_status

RAN: Counter[str] = Counter()


@component
def rr_load(x: int) -> int:
    RAN["rr_load"] += 1
    return x + 1


@component
def rr_shape(y: int) -> str:
    RAN["rr_shape"] += 1
    return f"shape:{y}"


@workflow
def api_rerun_chain(x: int) -> str:
    """Two steps: load feeds shape."""
    return rr_shape(rr_load(x))


@pytest.fixture
def http(namespace: str) -> Iterator[httpx.Client]:
    RAN.clear()
    with served_client(api_keys=(KEY,)) as c:
        yield c


def _finished(http: httpx.Client, **inputs: object) -> str:
    ensure_local_worker(force=True)
    r = http.post("/workflows/api_rerun_chain/start", json=inputs)
    assert r.status_code == 202, r.text
    run_id = str(r.json()["run_id"])
    wait_status(http, run_id, "completed")
    return run_id


def _replayed(run_id: str) -> dict[str, str | None]:
    return {s.name: s.replayed_from for s in af.attach(run_id).spans() if s.replayed}


def test_rerun_answers_202_with_location_and_the_new_runs_document(http: httpx.Client) -> None:
    source = _finished(http, x=1)
    assert RAN == Counter(rr_load=1, rr_shape=1)
    r = http.post(f"/runs/{source}/rerun", json={"steps": ["rr_shape"]})
    assert r.status_code == 202, r.text
    doc = r.json()
    new_id = doc["run_id"]
    assert new_id != source and doc["forked_from"] == source
    assert doc["workflow"] == "api_rerun_chain" and doc["inputs"] == {"x": 1}
    assert r.headers["location"] == f"/runs/{new_id}"
    done = wait_status(http, new_id, "completed")
    assert done["output"] == "shape:2" and done["forked_from"] == source
    assert RAN == Counter(rr_load=1, rr_shape=2)  # only the named step executed
    assert _replayed(new_id) == {"rr_load": source}
    assert http.get(f"/runs/{source}").json()["forked_from"] is None


def test_rerun_with_new_inputs_executes_every_step(http: httpx.Client) -> None:
    source = _finished(http, x=1)
    r = http.post(f"/runs/{source}/rerun", json={"inputs": {"x": 5}})
    assert r.status_code == 202, r.text
    done = wait_status(http, r.json()["run_id"], "completed")
    assert done["output"] == "shape:6" and done["inputs"] == {"x": 5}
    assert RAN == Counter(rr_load=2, rr_shape=2)


def test_an_empty_body_reruns_replaying_everything(http: httpx.Client) -> None:
    source = _finished(http, x=2)
    r = http.post(f"/runs/{source}/rerun")
    assert r.status_code == 202, r.text
    assert wait_status(http, r.json()["run_id"], "completed")["output"] == "shape:3"
    assert RAN == Counter(rr_load=1, rr_shape=1)


def test_the_api_only_queues_the_rerun(namespace: str) -> None:
    with served_client(api_keys=(KEY,)) as http:
        source = _finished(http, x=1)
        stop_local_worker()
        r = http.post(f"/runs/{source}/rerun")
        assert r.status_code == 202, r.text
        time.sleep(0.3)
        assert http.get(f"/runs/{r.json()['run_id']}").json()["status"] == "queued"


def test_unknown_run_is_404(http: httpx.Client) -> None:
    r = http.post("/runs/0123456789abcdef01234567/rerun", json={})
    assert r.status_code == 404 and r.json()["error"] == "run_not_found", r.text


def test_a_source_not_finished_is_409(http: httpx.Client) -> None:
    r = http.post("/workflows/api_rerun_chain/start", json={"x": 1})
    queued = r.json()["run_id"]  # no worker: it stays queued
    r = http.post(f"/runs/{queued}/rerun", json={})
    assert r.status_code == 409 and r.json()["error"] == "conflict", r.text
    assert "finished" in r.json()["message"]


def test_an_unknown_step_is_422_naming_the_components(http: httpx.Client) -> None:
    source = _finished(http, x=1)
    r = http.post(f"/runs/{source}/rerun", json={"steps": ["nope"]})
    assert r.status_code == 422 and r.json()["error"] == "invalid_input", r.text
    assert "nope" in r.json()["message"] and "rr_shape" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"[1, 2]", 422, "body"),
        (b'"x"', 422, "body"),
        (b'{"inputs": [1]}', 422, "body.inputs"),
        (b'{"steps": "rr_load"}', 422, "body.steps"),
        (b'{"steps": [1]}', 422, "body.steps.0"),
        (b'{"steps": [""]}', 422, "body.steps.0"),
        (b'{"stepz": ["rr_load"]}', 422, "body.stepz"),
        (b'{"inputs": {"x": 1', 400, None),
        (b'{"inputs": {"x": 123456789012345678901234567890}}', 422, None),
    ],
)
def test_hostile_bodies_get_error_documents(
    http: httpx.Client, body: bytes, status: int, field: str | None
) -> None:
    source = _finished(http, x=1)
    r = http.post(
        f"/runs/{source}/rerun", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["error"] and doc["message"]
    if field is not None:
        assert doc["fields"][0]["field"] == field
    assert RAN == Counter(rr_load=1, rr_shape=1)  # nothing was queued


def test_inputs_the_workflow_does_not_take_are_422(http: httpx.Client) -> None:
    source = _finished(http, x=1)
    r = http.post(f"/runs/{source}/rerun", json={"inputs": {"x": "not a number"}})
    assert r.status_code == 422, r.text


def test_rerun_needs_an_api_key(http: httpx.Client) -> None:
    source = _finished(http, x=1)
    anonymous = http.post(f"/runs/{source}/rerun", headers={"Authorization": ""})
    assert anonymous.status_code == 401, anonymous.text
    token = http.post(f"/runs/{source}/token").json()["token"]
    scoped = http.post(f"/runs/{source}/rerun", headers={"Authorization": f"Bearer {token}"})
    assert scoped.status_code in (401, 403), scoped.text


def test_openapi_documents_the_rerun(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    op = spec["paths"]["/runs/{run_id}/rerun"]["post"]
    assert "202" in op["responses"] and "409" in op["responses"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"inputs", "steps"}
    assert "forked_from" in spec["components"]["schemas"]["RunView"]["properties"]
