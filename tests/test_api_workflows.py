"""REST API, workflows: listing, schemas, sync and async invocation, idempotency, input
errors. A real uvicorn server in a thread, a real worker thread, real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from aiflow_nb.api import ServerThread
from aiflow_nb.ops.local import ensure_local_worker

from support.api import KEY, client, parse_sse, served_client


@pytest.fixture
def http(namespace: str) -> Iterator[httpx.Client]:
    with served_client(api_keys=(KEY,)) as c:
        yield c


@pytest.fixture
def worker(namespace: str) -> None:
    ensure_local_worker(force=True)  # the conftest fixture stops it after the test


def test_list_and_describe_workflows_with_json_schemas(http: httpx.Client) -> None:
    names = [w["name"] for w in http.get("/workflows").json()["workflows"]]
    assert {"api_add", "api_order", "api_ticker"} <= set(names)
    doc = http.get("/workflows/api_order").json()
    assert doc["description"].startswith("Count the quantity")
    schema = doc["input_schema"]
    assert schema["required"] == ["items"]
    assert schema["properties"]["items"]["type"] == "array"
    assert doc["output_schema"] == {"type": "object", "additionalProperties": {"type": "integer"}}


def test_sync_run_returns_the_output(http: httpx.Client, worker: None) -> None:
    r = http.post("/workflows/api_add/run", json={"a": 2, "b": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and body["output"] == 7
    assert len(body["run_id"]) == 24 and r.headers["location"] == f"/runs/{body['run_id']}"


def test_sync_run_of_a_failing_workflow_reports_the_error(http: httpx.Client, worker: None) -> None:
    body = http.post("/workflows/api_fail/run", json={"message": "boom"}).json()
    assert body["status"] == "failed" and body["output"] is None
    assert body["error"]["cause"] == "RuntimeError" and "boom" in body["error"]["message"]
    assert body["error"].get("traceback") is None  # the traceback is in GET /runs/{id} only


def test_sync_run_answers_202_when_the_wait_ends_first(http: httpx.Client) -> None:
    r = http.post("/workflows/api_add/run", params={"wait": 0.2}, json={"a": 1})  # no worker
    assert r.status_code == 202
    assert r.json()["status"] == "queued" and r.headers["location"].startswith("/runs/")


def test_sync_run_streams_events_then_the_result(http: httpx.Client, worker: None) -> None:
    with http.stream(
        "POST",
        "/workflows/api_ticker/run",
        json={"n": 3, "delay": 0.01},
        headers={"Accept": "text/event-stream"},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        messages = [m for m in parse_sse(r.read().decode()) if "data" in m]
    types = [httpx.Response(200, content=m["data"]).json()["type"] for m in messages]
    assert types[0] == "run.queued" and types.count("progress") == 3
    assert types[-2:] == ["run.completed", "result"]
    assert '"output":3' in messages[-1]["data"] and "id" not in messages[-1]


def test_sync_run_streams_ndjson(http: httpx.Client, worker: None) -> None:
    r = http.post(
        "/workflows/api_add/run", json={"a": 1}, headers={"Accept": "application/x-ndjson"}
    )
    lines = [httpx.Response(200, content=x).json() for x in r.text.splitlines() if x]
    assert lines[-1] == {
        "type": "result",
        "run_id": lines[0]["run_id"],
        "status": "completed",
        "output": 2,
        "error": None,
    }


def test_start_is_asynchronous_with_location(http: httpx.Client) -> None:
    r = http.post("/workflows/api_add/start", json={"a": 1})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    run = http.get(r.headers["location"]).json()
    assert run["run_id"] == r.json()["run_id"] and run["inputs"] == {"a": 1}


def test_idempotency_key_returns_the_same_run(http: httpx.Client) -> None:
    first = http.post("/workflows/api_add/start", json={"a": 1}, headers={"Idempotency-Key": "k1"})
    again = http.post("/workflows/api_add/start", json={"a": 1}, headers={"Idempotency-Key": "k1"})
    other = http.post("/workflows/api_add/start", json={"a": 1}, headers={"Idempotency-Key": "k2"})
    assert first.json()["run_id"] == again.json()["run_id"] != other.json()["run_id"]
    assert len(http.get("/runs").json()["runs"]) == 2


def test_wrong_type_is_422_naming_the_field(http: httpx.Client) -> None:
    r = http.post("/workflows/api_add/start", json={"a": "not a number"})
    assert r.status_code == 422
    body = r.json()
    assert [f["field"] for f in body["fields"]] == ["a"]
    assert "a: Input should be a valid integer" in body["message"]
    nested = http.post("/workflows/api_order/start", json={"items": [{"sku": "x", "qty": "many"}]})
    assert nested.status_code == 422 and nested.json()["fields"][0]["field"] == "items.0.qty"


def test_missing_and_unknown_inputs_are_422(http: httpx.Client) -> None:
    missing = http.post("/workflows/api_add/start", json={})
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "a"
    extra = http.post("/workflows/api_add/start", json={"a": 1, "zzz": 2})
    assert extra.status_code == 422 and extra.json()["fields"][0]["field"] == "zzz"
    not_object = http.post("/workflows/api_add/start", json=[1, 2])
    assert not_object.status_code == 422 and "JSON object" in not_object.json()["message"]


def test_malformed_json_is_400(http: httpx.Client) -> None:
    r = http.post(
        "/workflows/api_add/run", content=b'{"a": 1', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"


def test_unknown_workflow_is_404_listing_known_ones(http: httpx.Client) -> None:
    for path in ("/workflows/nope", "/workflows/nope/run", "/workflows/nope/start"):
        r = http.request("GET" if path.count("/") == 2 else "POST", path, json={})
        assert r.status_code == 404 and "api_add" in r.json()["message"]


def test_body_over_the_limit_is_413(namespace: str) -> None:
    with served_client(api_keys=(KEY,), max_body=1000) as c:
        r = c.post("/workflows/api_add/start", json={"a": 1, "pad": "x" * 2000})
        assert r.status_code == 413 and "1000 bytes" in r.json()["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            yield b'{"a": 1, "pad": "'
            for _ in range(10):
                yield b"x" * 200
            yield b'"}'

        chunked = c.post("/workflows/api_add/start", content=chunks())
        assert chunked.status_code == 413
        assert c.post("/workflows/api_add/start", json={"a": 1}).status_code == 202


def test_default_body_limit_is_one_mib(http: httpx.Client) -> None:
    r = http.post("/workflows/api_add/start", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413


def test_openapi_lists_each_workflow_as_an_endpoint(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    op = spec["paths"]["/workflows/api_order/start"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    item_ref = body["properties"]["items"]["items"]["$ref"]
    assert item_ref == "#/components/schemas/api_order__Item"
    assert "api_order__Item" in spec["components"]["schemas"]
    assert "/runs/{run_id}/events" in spec["paths"] and "/healthz" in spec["paths"]
    assert http.get("/docs").status_code == 200


def test_notebook_registered_workflow_is_listed_and_runs(http: httpx.Client, worker: None) -> None:
    from aiflow_nb.ops.code import register_bundle, register_source

    source = (
        "from aiflow_nb import workflow\n\n@workflow\ndef nb_greet(who: str) -> str:\n"
        "    '''Greets from a notebook.'''\n    return 'hi ' + who\n"
    )
    digest = register_source(source, "cell-1")
    register_bundle("nb_greet", [digest])
    listed = {w["name"]: w for w in http.get("/workflows").json()["workflows"]}
    assert listed["nb_greet"]["source"] == "notebook"
    assert http.get("/workflows/nb_greet").json()["input_schema"]["required"] == ["who"]
    r = http.post("/workflows/nb_greet/run", json={"who": "nb"})
    assert r.json()["output"] == "hi nb"
    assert http.post("/workflows/nb_greet/start", json={"who": 1}).status_code == 422


def test_wrong_method_and_unknown_path_are_json(http: httpx.Client) -> None:
    wrong = http.delete("/workflows")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    unknown = http.get("/nope")
    assert unknown.status_code == 404 and "/docs" in unknown.json()["message"]


def test_embedded_in_another_asgi_app_under_a_prefix(namespace: str) -> None:
    from fastapi import FastAPI

    from aiflow_nb.api import create_app

    outer = FastAPI()
    outer.mount("/aiflow", create_app(api_keys=(KEY,)))
    with ServerThread(outer) as srv, client(srv) as c:
        r = c.post("/aiflow/workflows/api_add/start", json={"a": 1})
        assert r.status_code == 202 and r.headers["location"].startswith("/aiflow/runs/")
        assert c.get(r.headers["location"]).json()["status"] == "queued"
