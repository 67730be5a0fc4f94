"""REST API in a real browser: Debian's Chromium (headless, Playwright) follows a run with
its own ``EventSource`` against a server that drops the connection once; the browser's
reconnect (``Last-Event-ID``) must resume with no gap and no duplicate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiflow_nb.api import ServerThread, create_app
from aiflow_nb.ops.local import ensure_local_worker

from support.api import KEY, client
from support.browser import chromium, screenshot


class _Dropped(Exception):
    pass


class DropOnce:
    """ASGI wrapper: the first event stream is cut after ``chunks`` body chunks, by returning
    without finishing the response (uvicorn then closes the connection). Records the
    ``Last-Event-ID`` of every event-stream request."""

    def __init__(self, app: ASGIApp, chunks: int) -> None:
        self.app = app
        self.chunks = chunks
        self.dropped = False
        self.last_event_ids: list[str | None] = []
        self.last_sent_id: str | None = None  # of the cut stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/events"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        self.last_event_ids.append((headers.get(b"last-event-id") or b"").decode() or None)
        if self.dropped:
            await self.app(scope, receive, send)
            return
        self.dropped = True
        sent = 0

        async def cut(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += 1
                if sent > self.chunks:
                    raise _Dropped
                ids = [x[4:] for x in message["body"].decode().split("\n") if x.startswith("id: ")]
                self.last_sent_id = ids[-1] if ids else self.last_sent_id
            await send(message)

        try:
            await self.app(scope, receive, cut)
        except BaseException as exc:  # may arrive wrapped in an exception group
            if not _is_drop(exc):
                raise


def _is_drop(exc: BaseException) -> bool:
    if isinstance(exc, _Dropped):
        return True
    inner = getattr(exc, "exceptions", None) or ([exc.__cause__] if exc.__cause__ else [])
    return any(_is_drop(e) for e in inner if e is not None)


FOLLOW_JS = """
(url) => new Promise((resolve) => {
  const got = []; let errors = 0;
  const es = new EventSource(url);
  es.onmessage = (m) => {
    const doc = JSON.parse(m.data);
    got.push({id: m.lastEventId, type: doc.type});
    if (doc.type === 'run.completed') { es.close(); resolve({got, errors}); }
  };
  es.onerror = () => { errors += 1; };
  setTimeout(() => { es.close(); resolve({got, errors, timeout: true}); }, 20000);
})
"""


@pytest.mark.browser
def test_browser_eventsource_resumes_after_a_dropped_connection(namespace: str) -> None:
    ensure_local_worker(force=True)
    # cut after the retry line and 3 writes (replayed events arrive in one batch)
    app = DropOnce(create_app(api_keys=(KEY,), sse_retry_ms=100), chunks=4)
    with ServerThread(app) as server, client(server) as http:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{server.url}/healthz")
            inputs = {"n": 20, "delay": 0.1}  # started once the browser is up: mid-run
            run_id = http.post("/workflows/api_ticker/start", json=inputs).json()["run_id"]
            token = http.post(f"/runs/{run_id}/token").json()["token"]
            url = f"/runs/{run_id}/events?token={token}"
            result: dict[str, Any] = page.evaluate(FOLLOW_JS, url)
            page.set_content(f"<pre>{json.dumps(result, indent=1)}</pre>")
            screenshot(page, "api_eventsource_resume")
        full = [
            json.loads(line)
            for line in http.get(
                f"/runs/{run_id}/events", params={"format": "ndjson"}
            ).text.splitlines()
            if line
        ]
    assert not result.get("timeout"), result
    assert app.dropped and result["errors"] >= 1  # the connection did drop once
    got_ids = [e["id"] for e in result["got"]]
    assert got_ids == [e["id"] for e in full]  # no gap, no duplicate
    assert app.last_sent_id in got_ids[:-1]  # the drop came mid-run
    assert app.last_event_ids[1] == app.last_sent_id  # the browser resumed right after it
