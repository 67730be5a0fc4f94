"""REST API, event streams: SSE and NDJSON, resume after a disconnect with Last-Event-ID
or ?after= (no gap, no duplicate), keep-alives, the end of the stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from aiflow_nb.api import ServerThread
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.ops.submit import submit

from support.api import KEY, client, parse_sse, serve, wait_status


@pytest.fixture
def server(namespace: str) -> Iterator[ServerThread]:
    with serve(api_keys=(KEY,), keepalive=0.2, sse_retry_ms=100) as srv:
        yield srv


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


def events_of(text: str) -> list[tuple[str, dict[str, object]]]:
    return [(m["id"], json.loads(m["data"])) for m in parse_sse(text) if "data" in m]


def idle_run() -> str:
    """A run no worker takes (a version nobody serves): its feed stays open until the
    followers leave (a worker left running by an earlier test could otherwise end it)."""
    return submit("api_add", {"a": 1}, version="nobody-serves-this")


def start_ticker(http: httpx.Client, n: int, delay: float) -> str:
    ensure_local_worker(force=True)
    r = http.post("/workflows/api_ticker/start", json={"n": n, "delay": delay})
    return str(r.json()["run_id"])


def test_sse_stream_has_ids_and_ends_after_the_terminal_event(http: httpx.Client) -> None:
    run_id = start_ticker(http, 3, 0.01)
    r = http.get(f"/runs/{run_id}/events")
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    messages = parse_sse(r.text)
    assert messages[0] == {"retry": "100"}
    events = events_of(r.text)
    assert [e["type"] for _, e in events][-1] == "run.completed"
    assert all(eid == e["id"] for eid, e in events)
    assert [eid for eid, _ in events] == sorted(
        {eid for eid, _ in events}, key=lambda i: tuple(map(int, i.split("-")))
    )


def test_resume_after_a_disconnect_mid_run_with_last_event_id(http: httpx.Client) -> None:
    run_id = start_ticker(http, 30, 0.05)
    first: list[tuple[str, dict[str, object]]] = []
    with http.stream("GET", f"/runs/{run_id}/events") as r:
        buffer = ""
        for chunk in r.iter_text():
            buffer += chunk
            first = events_of(buffer.rsplit("\n\n", 1)[0])
            if len(first) >= 5:
                break  # disconnect mid-run
    assert wait_status(http, run_id, "running")["status"] == "running"
    last_id = first[-1][0]
    rest = events_of(http.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": last_id}).text)
    full = events_of(http.get(f"/runs/{run_id}/events").text)
    assert first + rest == full
    assert len(full) == len({eid for eid, _ in full}) >= 35


def test_resume_with_after_and_last_event_id_winning(http: httpx.Client) -> None:
    run_id = start_ticker(http, 4, 0.01)
    wait_status(http, run_id, "completed")
    full = events_of(http.get(f"/runs/{run_id}/events").text)
    after = events_of(http.get(f"/runs/{run_id}/events", params={"after": full[1][0]}).text)
    assert after == full[2:]
    both = http.get(
        f"/runs/{run_id}/events",
        params={"after": full[1][0]},
        headers={"Last-Event-ID": full[3][0]},
    )
    assert events_of(both.text) == full[4:]


def test_reconnect_after_the_terminal_event_is_204(http: httpx.Client) -> None:
    run_id = start_ticker(http, 1, 0.0)
    wait_status(http, run_id, "completed")
    last = events_of(http.get(f"/runs/{run_id}/events").text)[-1][0]
    r = http.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": last})
    assert r.status_code == 204 and r.content == b""


def test_bad_event_id_is_400(http: httpx.Client) -> None:
    run_id = start_ticker(http, 1, 0.0)
    for headers, params in [({"Last-Event-ID": "yesterday"}, {}), ({}, {"after": "1-2-3"})]:
        r = http.get(f"/runs/{run_id}/events", headers=headers, params=params)
        assert r.status_code == 400 and "is not an event id" in r.json()["message"]


def test_ndjson_on_request(http: httpx.Client) -> None:
    run_id = start_ticker(http, 2, 0.0)
    wait_status(http, run_id, "completed")
    for kwargs in (
        {"headers": {"Accept": "application/x-ndjson"}},
        {"params": {"format": "ndjson"}},
    ):
        r = http.get(f"/runs/{run_id}/events", **kwargs)  # type: ignore[arg-type]
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(x) for x in r.text.splitlines() if x]
        assert lines[-1]["type"] == "run.completed" and len(lines) >= 6


def test_keep_alive_comments_while_idle(http: httpx.Client) -> None:
    run_id = http.post("/workflows/api_add/start", json={"a": 1}).json()["run_id"]  # no worker
    seen: list[dict[str, str]] = []
    t0 = time.monotonic()
    with http.stream("GET", f"/runs/{run_id}/events") as r:
        buffer = ""
        for chunk in r.iter_text():
            buffer += chunk
            seen = parse_sse(buffer)
            if sum(1 for m in seen if m.get("comment") == "keep-alive") >= 2:
                break
    assert time.monotonic() - t0 < 5
    assert [json.loads(m["data"])["type"] for m in seen if "data" in m] == ["run.queued"]


def test_a_disconnected_follower_leaves_no_task_behind(
    server: ServerThread, http: httpx.Client
) -> None:
    run_id = idle_run()

    async def pumps() -> int:
        names = [t.get_name() for t in asyncio.all_tasks()]
        return sum(1 for n in names if n.startswith(("aiflow-sse-", "aiflow-feed-")))

    def count() -> int:
        fut = asyncio.run_coroutine_threadsafe(pumps(), _server_loop(server))
        return fut.result(5)

    for _ in range(3):
        with http.stream("GET", f"/runs/{run_id}/events") as r:
            next(r.iter_text())
            assert count() >= 1
    deadline = time.monotonic() + 5
    while count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count() == 0


def _server_loop(server: ServerThread) -> asyncio.AbstractEventLoop:
    assert server.loop is not None  # uvicorn's loop, in the server thread
    return server.loop


def test_followers_of_one_run_share_one_redis_reader(
    server: ServerThread, http: httpx.Client
) -> None:
    run_id = idle_run()
    hub = server.server.config.app.state.feeds
    streams = [http.stream("GET", f"/runs/{run_id}/events") for _ in range(3)]
    try:
        readers = [s.__enter__().iter_text() for s in streams]  # kept open (not closed)
        for reader in readers:
            text = ""
            while "run.queued" not in text:  # replayed: this follower is subscribed
                text += next(reader)
        assert list(hub.feeds) == [run_id] and len(hub.feeds[run_id].queues) == 3
    finally:
        for s in streams:
            s.__exit__(None, None, None)
    deadline = time.monotonic() + 5
    while hub.feeds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.feeds == {}  # the last follower gone, the feed is gone
