"""Hostile REST input answers a clear 4xx in the API's error document, never a 500, and the
server stays up. A real uvicorn server in a thread (one a real ``aiflow api`` process for
the access log), real Redis."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from aiflow_nb import defaults, keys, workflow
from aiflow_nb.api.server import free_port
from aiflow_nb.store import sync_redis

from support import PYTHONPATH
from support.api import KEY, served_client
from support.processes import wait_serving


@workflow
def hostile_echo(value: Any) -> Any:
    """Takes anything (an ``Any`` input)."""
    return value


@pytest.fixture
def http(namespace: str) -> Iterator[httpx.Client]:
    with served_client(api_keys=(KEY,)) as c:
        yield c


def _refused(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    doc: dict[str, Any] = r.json()
    assert doc["error"] == code and doc["status"] == status and doc["message"]
    return doc


def _still_up(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.post("/workflows/api_add/start", json={"a": 1}).status_code == 202


def _run_id(http: httpx.Client) -> str:
    run_id: str = http.post("/workflows/api_add/start", json={"a": 1}).json()["run_id"]
    return run_id


def test_scoped_token_with_a_non_ascii_mac_is_401(http: httpx.Client) -> None:
    run_id = _run_id(http)
    body = base64.urlsafe_b64encode(b'{"r":"x","e":1,"s":"read"}').rstrip(b"=").decode()
    for mac in ("\u00e9\u00e9\u00e9", "\u2603", "abc\u0660"):
        token = f"rt1.{body}.{mac}"
        r = http.get(f"/runs/{run_id}", params={"token": token}, headers={"Authorization": ""})
        _refused(r, 401, "invalid_token")
    # the same in the header (bytes: HTTP headers are latin-1)
    header = f"Bearer rt1.{body}.\u00e9\u00e9".encode("latin-1")
    r = http.get(f"/runs/{run_id}", headers={"Authorization": header})  # type: ignore[dict-item]
    _refused(r, 401, "invalid_token")
    _still_up(http)


@pytest.mark.parametrize("cursor", ["nan:x", "NaN:r1", "inf:x", "-inf:x", "1e999:x", "5:"])
def test_malformed_cursors_are_400(http: httpx.Client, cursor: str) -> None:
    _run_id(http)
    _refused(http.get("/runs", params={"cursor": cursor}), 400, "bad_cursor")
    _still_up(http)


BAD_EVENT_IDS = [
    "18446744073709551616",  # 2**64: past Redis's 64-bit halves
    "99999999999999999999-0",
    "0-18446744073709551616",
    "18446744073709551615-18446744073709551615",  # the last id: nothing can follow it
    "\u0661\u0662\u0663-0",  # Arabic-Indic digits: digits to Python, not to Redis
]


@pytest.mark.parametrize("event_id", BAD_EVENT_IDS)
def test_event_ids_out_of_range_are_400_in_after_and_last_event_id(
    http: httpx.Client, event_id: str
) -> None:
    run_id = _run_id(http)
    for fmt in ("sse", "ndjson"):
        r = http.get(f"/runs/{run_id}/events", params={"after": event_id, "format": fmt})
        _refused(r, 400, "bad_event_id")
    if event_id.isascii():  # a header is latin-1
        r = http.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": event_id})
        _refused(r, 400, "bad_event_id")
    _still_up(http)
    # the largest id some event can follow is valid: the run ended, nothing follows it
    sync_redis().hset(keys.run(run_id), "status", "completed")
    r = http.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "18446744073709551615-0"})
    assert r.status_code == 204


def _nested(depth: int) -> bytes:
    return b'{"value": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("depth", [defaults.API_MAX_NESTING + 1, 500, 5000])
def test_deeply_nested_input_is_422(http: httpx.Client, depth: int) -> None:
    r = http.post("/workflows/hostile_echo/start", content=_nested(depth))
    doc = _refused(r, 422, "too_deep")
    assert str(defaults.API_MAX_NESTING) in doc["message"]
    _still_up(http)
    r = http.post("/workflows/hostile_echo/start", content=_nested(defaults.API_MAX_NESTING))
    assert r.status_code == 202, r.text  # up to the limit is fine


def test_eighty_thousand_unknown_fields_get_a_capped_422(http: httpx.Client) -> None:
    fields = {f"f{i}": 0 for i in range(80_000)}
    body = orjson.dumps({"a": 1, **fields})
    assert len(body) <= defaults.API_MAX_BODY
    r = http.post("/workflows/api_add/start", content=body)
    doc = _refused(r, 422, "invalid_input")
    assert len(doc["fields"]) == defaults.API_MAX_FIELD_ERRORS
    assert doc["more_fields"] == 80_000 - defaults.API_MAX_FIELD_ERRORS
    assert len(r.content) < 10_000  # was 4.9 MB
    _still_up(http)


@pytest.mark.parametrize(
    "number",
    [
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551616",
        "9" * 5000,  # past a double too, and past Python's int-from-text limit
    ],
)
def test_integers_beyond_64_bits_are_422_not_floats(http: httpx.Client, number: str) -> None:
    for name, body in (
        ("hostile_echo", f'{{"value": {number}}}'),
        ("hostile_echo", f'{{"value": {{"deep": [1, {number}]}}}}'),
        ("api_add", f'{{"a": {number}}}'),
    ):
        r = http.post(f"/workflows/{name}/start", content=body)
        doc = _refused(r, 422, "integer_out_of_range")
        assert "64 bits" in doc["message"]
    _still_up(http)
    # the 64-bit edges and long digit runs in strings pass, exactly
    value = [2**64 - 1, -(2**63), "123456789012345678901234567890", 1.5e300]
    r = http.post("/workflows/hostile_echo/start", content=orjson.dumps({"value": value}))
    assert r.status_code == 202, r.text
    stored = http.get(f"/runs/{r.json()['run_id']}").json()["inputs"]["value"]
    assert stored == value and isinstance(stored[0], int)


LONG = "1234567890123456789"  # a 19-digit run: the body goes to the exact (stdlib) parser


@pytest.mark.parametrize(
    "body",
    [
        f'{{"value": [1e400, {LONG}]}}',  # read as inf by the stdlib parser, stored as null
        f'{{"value": [-1e400, "{LONG}"]}}',
        f'{{"value": {{"\\udfff": {LONG}}}}}',  # a lone surrogate as a key: was a 500
        f'{{"value": ["\\ud800", {LONG}]}}',
        '{"value": 1e400}',  # the same without a long digit run (orjson's parser)
        '{"value": {"\\udfff": 1}}',
    ],
)
def test_infinite_numbers_and_lone_surrogates_are_400_on_either_parser(
    http: httpx.Client, body: str
) -> None:
    r = http.post("/workflows/hostile_echo/start", content=body)
    _refused(r, 400, "malformed_json")
    assert sync_redis().zcard(keys.runs(0)) == 0  # nothing written
    _still_up(http)


@pytest.mark.parametrize("status", ["bogus", "complete", "cancelling", "\u2603"])
def test_an_unknown_status_filter_is_422_not_an_empty_list(http: httpx.Client, status: str) -> None:
    _run_id(http)
    doc = _refused(http.get("/runs", params={"status": status}), 422, "invalid_input")
    assert "completed" in doc["message"] and doc["fields"][0]["field"] == "query.status"
    assert http.get("/runs", params={"status": "queued"}).json()["runs"]  # a real one lists
    _still_up(http)


def test_redis_error_replies_get_an_error_document(http: httpx.Client) -> None:
    sync_redis().set(keys.run("wrong-type"), "a string, not a hash")
    doc = _refused(http.get("/runs/wrong-type"), 502, "redis_error")
    assert "WRONGTYPE" in doc["message"]
    _still_up(http)


def test_redis_out_of_memory_is_503_with_retry_after(http: httpx.Client) -> None:
    r = sync_redis()
    before = r.config_get("maxmemory")["maxmemory"]
    r.config_set("maxmemory", 1)  # every write refused: OOM
    try:
        resp = http.post("/workflows/api_add/start", json={"a": 1})
    finally:
        r.config_set("maxmemory", before)
    doc = _refused(resp, 503, "redis_unavailable")
    assert "retry" in doc["message"].lower()
    assert resp.headers["Retry-After"] == str(defaults.API_RETRY_AFTER)
    _still_up(http)


def test_tokens_are_masked_in_the_access_log(namespace: str) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "AIFLOW_API_KEYS": KEY}
    env["AIFLOW_LOCAL_WORKER"] = "0"
    code = "import sys; from aiflow_nb.cli import main; sys.argv[0] = 'aiflow'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "api", "--app", "support.api", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(proc, f"{url}/healthz", timeout=20)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            run_id = c.post("/workflows/api_add/start", json={"a": 1}).json()["run_id"]
            token = c.post(f"/runs/{run_id}/token").json()["token"]
        with httpx.Client(base_url=url) as anonymous:
            assert anonymous.get(f"/runs/{run_id}", params={"token": token}).status_code == 200
            query = f"x=1&%74oken={token}&TOKEN={token}"  # any spelling starlette reads
            assert anonymous.get(f"/runs/{run_id}/output?{query}").status_code in (200, 202)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    log = out.decode()
    assert f"/runs/{run_id}?token=*** HTTP/1.1" in log, log[-2000:]
    assert f"/runs/{run_id}/output?x=1&%74oken=***&TOKEN=*** HTTP/1.1" in log
    assert token not in log and token.split(".")[-1] not in log


def test_an_unexpected_error_answers_the_error_document(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    from aiflow_nb.api import ServerThread, create_app

    from support.api import client

    app = create_app(api_keys=(KEY,))

    def boom() -> None:
        raise RuntimeError("a bug in a route")

    app.add_api_route("/boom", boom)  # a route with a bug (the API's own have none known)
    with ServerThread(app) as server, client(server) as c:
        r = c.get("/boom")
        doc = _refused(r, 500, "internal_error")
        assert "RuntimeError" in doc["message"] and "a bug" not in doc["message"]
        _still_up(c)  # on the same connection: it was not dropped
    failed = [rec for rec in caplog.records if rec.getMessage() == "GET /boom failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None  # logged, with its traceback
