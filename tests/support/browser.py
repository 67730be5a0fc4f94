"""Browser-test helpers: the viewer served by ``aiflow viewer`` in a subprocess, and
Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import PYTHONPATH, ROOT
from .processes import terminate

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts"

BARS_JS = """() => {
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.name === 'bars') {
        const d = m.data_source.data;
        const col = (k) => Array.from(d instanceof Map ? d.get(k) : d[k]);
        return {right: col('right'), running: col('running'), label: col('label')};
      }
    }
  }
  return null;
}"""
"""The waterfall's bars as the browser holds them (BokehJS models)."""

LABELS_JS = """() => {
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.type !== 'ColumnDataSource' || m.name !== 'label_source') continue;
      const d = m.data, col = (k) => (d instanceof Map ? d.get(k) : d[k]);
      return Array.from(col('label'));
    }
  }
  return null;
}"""
"""The span names the waterfall draws (only those of the rows in view)."""

PAN_JS = """(top) => {
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.type === 'Range1d' && m.start > m.end) m.setv({start: top + 9.5, end: top - 0.5});
    }
  }
}"""
"""Scroll the waterfall so that row ``top`` is the first in view (10 rows)."""


@contextmanager
def viewer_server(local_worker: str | None = "0") -> Iterator[str]:
    """``aiflow viewer --port 0`` in a subprocess (this test's Redis and namespace); its URL.
    ``local_worker``: its ``AIFLOW_LOCAL_WORKER`` (None: unset, the default a user has)."""
    exe = Path(sys.executable).with_name("aiflow")
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    env.pop("AIFLOW_LOCAL_WORKER", None)
    if local_worker is not None:
        env["AIFLOW_LOCAL_WORKER"] = local_worker
    # its log goes to a file: a pipe nobody reads fills up (64 KiB) and the server then
    # blocks on its next log line, freezing every page
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [str(exe), "viewer", "--port", "0"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: lines.put(proc.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    ).start()
    try:
        line = lines.get(timeout=60)
        if not line.startswith("aiflow viewer at "):
            log.seek(0)
            raise RuntimeError(f"viewer did not start: {line!r} {log.read().decode()}")
        yield line.split()[3]
    finally:
        terminate(proc)
        proc.stdout.close()  # type: ignore[union-attr]
        _keep_log(log)
        log.close()


def _keep_log(log: Any) -> None:
    """The viewer's log, as test-artifacts/viewer-<test>.log (a page that never showed
    something leaves the server's side of the story there)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "viewer").split(" ")[0]
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in test.split("::")[-1])
    ARTIFACTS.mkdir(exist_ok=True)
    log.seek(0)
    (ARTIFACTS / f"viewer-{name}.log").write_bytes(log.read())


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # the page round-trips through a Panel server on 2 shared cores: Playwright's default
    # 5 s for an assertion to come true is too tight when the machine is loaded
    expect.set_options(timeout=30_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save ``page`` to ``test-artifacts/<name>.png``: the whole page (which resizes the
    viewport while it is taken, so the page lays out again) or, without ``full_page``,
    what the viewport shows."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, timeout=90_000)
    return path


def block_network(context: Any) -> list[str]:
    """Abort every request of ``context`` to a host other than loopback (as on a machine
    with no internet); the list of those attempted, for the test to assert empty."""
    from urllib.parse import urlsplit

    attempted: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost", "::1"):
            r.continue_()
        else:
            attempted.append(url)
            r.abort()

    context.route("**/*", route)
    return attempted


def offline_page(browser: Any, url: str, **context_options: Any) -> tuple[Any, list[str]]:
    """A page of a new browser context (``context_options``: viewport, color_scheme, ...)
    with the network blocked as ``block_network`` does, opened at ``url``; the page and
    the list of requests the blocking refused."""
    context = browser.new_context(**context_options)
    attempted = block_network(context)
    page = context.new_page()
    page.goto(url)
    return page, attempted
