"""REST API, runs: read, list with cursors, wait for output, cancel, redaction, health,
Redis outages. A real uvicorn server in a thread, real Redis, a real worker where named."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

import aiflow_nb
from aiflow_nb.ops.local import ensure_local_worker, local_worker

from support.api import KEY, served_client, wait_status


@pytest.fixture
def http(namespace: str) -> Iterator[httpx.Client]:
    with served_client(api_keys=(KEY,)) as c:
        yield c


def start(http: httpx.Client, workflow: str, **inputs: object) -> str:
    r = http.post(f"/workflows/{workflow}/start", json=inputs)
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


def test_the_api_never_executes_runs(http: httpx.Client) -> None:
    run_id = start(http, "api_add", a=1)
    time.sleep(0.3)
    assert local_worker() is None
    assert http.get(f"/runs/{run_id}").json()["status"] == "queued"


def test_get_run_has_status_timestamps_attempt_and_output(http: httpx.Client) -> None:
    ensure_local_worker(force=True)
    run_id = start(http, "api_add", a=3, b=4)
    doc = wait_status(http, run_id, "completed")
    assert doc["output"] == 7 and doc["attempt"] == 1 and doc["workflow"] == "api_add"
    assert doc["created_at"] <= doc["started_at"] <= doc["ended_at"]
    assert doc["inputs"] == {"a": 3, "b": 4} and doc["error"] is None


def test_failed_run_shows_the_error_with_traceback(http: httpx.Client) -> None:
    ensure_local_worker(force=True)
    run_id = start(http, "api_fail", message="kaput")
    doc = wait_status(http, run_id, "failed")
    assert "kaput" in doc["error"]["message"] and "RuntimeError" in doc["error"]["traceback"]


def test_unknown_run_is_404_everywhere(http: httpx.Client) -> None:
    for method, path in [
        ("GET", "/runs/{}"),
        ("GET", "/runs/{}/output"),
        ("GET", "/runs/{}/events"),
        ("POST", "/runs/{}/cancel"),
        ("POST", "/runs/{}/token"),
    ]:
        r = http.request(method, path.format("0123456789abcdef01234567"))
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == "run_not_found"
        assert "0123456789abcdef01234567" in r.json()["message"]


def test_output_waits_then_answers(http: httpx.Client) -> None:
    run_id = start(http, "api_add", a=1)
    t0 = time.monotonic()
    pending = http.get(f"/runs/{run_id}/output", params={"wait": 0.3})
    assert pending.status_code == 202 and pending.json()["status"] == "queued"
    assert time.monotonic() - t0 >= 0.3
    ensure_local_worker(force=True)
    done = http.get(f"/runs/{run_id}/output", params={"wait": 10})
    assert done.status_code == 200 and done.json() == {
        "run_id": run_id,
        "status": "completed",
        "output": 2,
        "error": None,
    }


def test_list_runs_pages_with_a_cursor_and_filters(http: httpx.Client) -> None:
    ids = [start(http, "api_add", a=i) for i in range(5)]
    fail_id = start(http, "api_fail", message="x")
    page1 = http.get("/runs", params={"limit": 4}).json()
    page2 = http.get("/runs", params={"limit": 4, "cursor": page1["next_cursor"]}).json()
    seen = [r["run_id"] for r in page1["runs"] + page2["runs"]]
    assert seen == [fail_id, *reversed(ids)]  # newest first, no gap, no duplicate
    assert page2["next_cursor"] is None
    only = http.get("/runs", params={"workflow": "api_fail"}).json()["runs"]
    assert [r["run_id"] for r in only] == [fail_id]
    assert http.post(f"/runs/{ids[0]}/cancel").json()["status"] == "cancelled"
    cancelled = http.get("/runs", params={"status": "cancelled"}).json()["runs"]
    assert [r["run_id"] for r in cancelled] == [ids[0]]
    bad = http.get("/runs", params={"cursor": "garbage"})
    assert bad.status_code == 400 and "cursor" in bad.json()["message"]
    assert http.get("/runs", params={"limit": 0}).status_code == 422


def test_cancel_a_queued_and_a_running_run(http: httpx.Client) -> None:
    queued = start(http, "api_add", a=1)
    assert http.post(f"/runs/{queued}/cancel").json() == {"run_id": queued, "status": "cancelled"}
    ensure_local_worker(force=True)
    running = start(http, "api_ticker", n=200, delay=0.05)
    wait_status(http, running, "running")
    assert http.post(f"/runs/{running}/cancel").json()["status"] == "cancelling"
    assert wait_status(http, running, "cancelled")["status"] == "cancelled"
    again = http.post(f"/runs/{running}/cancel").json()
    assert again["status"] == "cancelled"


def test_secrets_are_redacted_in_responses_and_events(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider-key-123456")
    ensure_local_worker(force=True)
    with served_client(api_keys=(KEY,)) as http:
        run_id = http.post(
            "/workflows/api_secret/run", json={"user": "bob", "api_token": "tok-very-secret-42"}
        ).json()["run_id"]
        doc = http.get(f"/runs/{run_id}").json()
        assert doc["inputs"] == {"user": "bob", "api_token": "***"}
        assert doc["output"] == "bob:***"
        events = http.get(f"/runs/{run_id}/events").text
        assert "tok-very-secret-42" not in events and '"api_token":"***"' in events
        assert "using ***" in events
        failed = http.post(
            "/workflows/api_fail/run", json={"message": "bad key sk-provider-key-123456"}
        ).json()
        assert "sk-provider-key-123456" not in str(failed) and "bad key ***" in str(failed)
        full = http.get(f"/runs/{failed['run_id']}").json()
        assert "sk-provider-key-123456" not in str(full)
        listed = http.get("/runs").text
        assert "tok-very-secret-42" not in listed and "sk-provider-key-123456" not in listed


def test_healthz_reports_redis_and_workers(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "no_workers", "redis": "ok", "workers": 0}
    ensure_local_worker(force=True)
    assert http.get("/healthz").json() == {"status": "ok", "redis": "ok", "workers": 1}


def test_redis_unreachable_is_503_with_retry_after(http: httpx.Client, tmp_path: object) -> None:
    run_id = start(http, "api_add", a=1)
    aiflow_nb.configure(redis_url=f"unix://{tmp_path}/no-redis-here.sock")
    for method, path in [
        ("GET", "/healthz"),
        ("GET", "/runs"),
        ("GET", f"/runs/{run_id}"),
        ("GET", f"/runs/{run_id}/output"),
        ("GET", f"/runs/{run_id}/events"),
        ("POST", "/workflows/api_add/start"),
    ]:
        r = http.request(method, path, json={"a": 1} if method == "POST" else None)
        assert r.status_code == 503, (path, r.text)
        assert r.headers["retry-after"] == "5" and "Redis" in r.json()["message"]
