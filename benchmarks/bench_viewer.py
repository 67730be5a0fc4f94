"""The dashboard in Chromium: time to first render of a 2,000-span run, time to select a
span in it, and event-to-screen latency of a live run; baselines from the same run: the
same spans rendered as a static HTML table (first render), and reloading that static
table (what a page without live updates costs to show a new event)."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

from aiflow_nb import component, keys, workflow
from aiflow_nb.events.reader import read_events
from aiflow_nb.store import sync_redis

from ._common import Figure, private_redis

SPANS = 2000
LIVE_STEPS = 10


@component
async def bench_leaf(i: int) -> int:
    return i


@workflow
async def bench_big(n: int) -> int:
    return len(await asyncio.gather(*(bench_leaf(i) for i in range(n))))


@component
def bench_step(i: int, gate: str) -> int:
    r = sync_redis()
    while not r.exists(f"{gate}:{i}"):
        time.sleep(0.002)
    return i


@workflow
def bench_stepper(k: int, gate: str) -> list[int]:
    return [bench_step(i, gate) for i in range(k)]


def _static_table(run_id: str, directory: Path) -> str:
    from aiflow_nb.access.handle import RunHandle

    (directory / "table.html").write_text(
        "<html><body>" + RunHandle(run_id).to_pandas().to_html() + "</body></html>"
    )
    return "table.html"


def _static_server(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _bars_at_least(n: int) -> str:
    from tests.support.browser import BARS_JS

    return f"() => {{ const b = ({BARS_JS})(); return b !== null && b.right.length >= {n}; }}"


_RENDERED_JS = """() => {
  const deep = (root, sel) => {
    if (root.querySelector(sel)) return true;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot && deep(el.shadowRoot, sel)) return true;
    }
    return false;
  };
  return typeof Bokeh !== 'undefined' && (BARS)() && deep(document, '.tabulator-row')
    && performance.now();
}"""
"""Browser-side: ms since navigation when the bars and the span tree are both drawn."""


def _first_render(browser: Any, url: str, run_id: str) -> tuple[float, float]:
    """(seconds from navigation to a drawn 2,000-span page, measured in the browser;
    seconds from a click on a span to its detail).

    ``browser`` is a browser context: pages opened in one share its cache, as the pages a
    person opens from the runs table do.
    """
    page = browser.new_page()
    page.goto(f"{url}?run={run_id}", wait_until="commit")
    rendered = page.wait_for_function(
        _RENDERED_JS.replace("BARS", _bars_at_least(SPANS)), polling=20, timeout=60_000
    ).json_value()
    t1 = time.perf_counter()
    page.locator(".tabulator-row", has_text="bench_leaf [3]").first.click()
    page.locator(".aiflow-detail", has_text="bench_leaf").wait_for()
    select = time.perf_counter() - t1
    page.close()
    return float(rendered) / 1000, select


def _static_render(browser: Any, url: str) -> float:
    """Seconds from navigation to the whole static table drawn, measured in the browser."""
    page = browser.new_page()
    page.goto(url, wait_until="commit")
    rendered = page.wait_for_function(
        f"() => document.querySelectorAll('tr').length > {SPANS} && performance.now()",
        polling=20,
        timeout=60_000,
    ).json_value()
    page.close()
    return float(rendered) / 1000


def _live_latency(browser: Any, url: str) -> list[float]:
    """Seconds from each span.started event (its timestamp) to its bar in the browser."""
    gate = f"{keys.runs(0)}:bench-gate"
    handle = bench_stepper.start(k=LIVE_STEPS, gate=gate)
    page = browser.new_page()
    page.goto(f"{url}?run={handle.run_id}")
    page.wait_for_function(_bars_at_least(2), polling=10, timeout=30_000)
    seen: dict[int, float] = {}
    for i in range(LIVE_STEPS - 1):
        sync_redis().set(f"{gate}:{i}", 1)
        page.wait_for_function(_bars_at_least(i + 3), polling=10, timeout=30_000)
        seen[i + 1] = time.time()
        time.sleep(0.05)
    sync_redis().set(f"{gate}:{LIVE_STEPS - 1}", 1)
    handle.result(timeout=30)
    page.close()
    started = {
        e.data["key"]: e.ts
        for e in read_events(handle.run_id, follow=False)
        if e.type == "span.started" and e.name == "bench_step"
    }
    return [seen[i] - started[f"bench_stepper/bench_step#{i}"] for i in seen]


def main() -> list[Figure]:
    from tests.support.browser import chromium, viewer_server

    with private_redis():
        big = bench_big.start(n=SPANS - 1)
        big.result(timeout=60)
        directory = Path(mkdtemp(prefix="aiflow-bench-viewer-"))
        static, static_url = _static_server(directory)
        page_name = _static_table(big.run_id, directory)
        with viewer_server() as url, chromium() as browser:
            viewport = {"width": 1400, "height": 1100}
            cold_ctx = browser.new_context(viewport=viewport)
            cold, _ = _first_render(cold_ctx, url, big.run_id)  # empty cache, fresh server
            cold_static = _static_render(
                browser.new_context(viewport=viewport), static_url + page_name
            )
            ctx = browser.new_context(viewport=viewport)
            renders, selects = zip(
                *(_first_render(ctx, url, big.run_id) for _ in range(3)), strict=True
            )
            statics = [_static_render(ctx, static_url + page_name) for _ in range(2)]
            latencies = _live_latency(ctx, url)
            reloads = [_static_render(ctx, static_url + page_name) for _ in range(2)]
        static.shutdown()
    render, select = statistics.median(renders), statistics.median(selects)
    static_s, latency = statistics.median(statics), statistics.median(latencies)
    return [
        Figure(
            "first render, 2,000-span run (median of 3)",
            render,
            "s",
            static_s,
            "static HTML table",
            "<= 1.5 s (issue 15, idle machine)",
            render <= 1.5,
        ),
        Figure(
            "first render, 2,000-span run, empty cache",
            cold,
            "s",
            cold_static,
            "static HTML table, empty cache",
            "<= 2 s",
            cold <= 2.0,
        ),
        Figure(
            "select a span -> detail, 2,000-span run",
            select,
            "s",
            static_s,
            "static HTML table",
            "responsive (<= 1 s)",
            select <= 1.0,
        ),
        Figure(
            f"event -> screen, live run (median of {len(latencies)})",
            latency,
            "s",
            statistics.median(reloads),
            "reload of static table",
            "<= 0.5 s (issue 15)",
            latency <= 0.5,
        ),
        Figure(
            "event -> screen, live run (worst)",
            max(latencies),
            "s",
            None,
            "",
            "<= 1 s",
            max(latencies) <= 1.0,
        ),
    ]
