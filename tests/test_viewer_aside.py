"""A run page is built aside (``aiflow_viewer.aside``): the dashboard answers the request
for it before the page is built, the browser shows a placeholder meanwhile, and the page
replaces it when built. The dashboard's server runs in this process here, so the test
can hold the page's build back (a RunPage that waits for the test): a real Panel server
and a real Chromium."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bokeh.io.doc as bokeh_doc
import bokeh.server.session as bokeh_session
import panel as pn
import pytest
from playwright.sync_api import expect

import aiflow_viewer.app as app
import aiflow_viewer.aside as aside
from aiflow_viewer.run_page import RunPage
from aiflow_viewer.server import make_server

from support.browser import chromium, screenshot
from support.trace import fan_out

pytestmark = [pytest.mark.browser]


@contextmanager
def served() -> Iterator[str]:
    """The dashboard served from a thread of this process (its own event loop); its URL."""
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        started["server"], started["url"] = make_server(port=0)
        ready.set()
        started["server"].io_loop.start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(60), "the dashboard did not start"
    server = started["server"]
    try:
        yield str(started["url"])
    finally:
        server.io_loop.add_callback(server.stop)
        server.io_loop.add_callback(server.io_loop.stop)
        thread.join(10)


def test_run_page_is_answered_before_it_is_built_and_then_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handle = fan_out.start(n=3)
    assert handle.result(timeout=30) == 3
    release, building = threading.Event(), threading.Event()

    class HeldBack(RunPage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            building.set()
            assert release.wait(60), "the test never let the page be built"
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(app, "RunPage", HeldBack)
    with served() as url, chromium() as browser:
        page_url = f"{url}?run={handle.run_id}"
        # the HTML comes while the page is still being built (it used to wait for it)
        with urllib.request.urlopen(page_url, timeout=20) as answer:
            assert answer.status == 200 and "bokeh" in answer.read().decode().lower()
        assert building.wait(10) and not release.is_set()

        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(page_url)
        expect(page.get_by_text(f"loading run {handle.run_id}")).to_be_visible(timeout=45_000)
        assert page.locator(".tabulator-row").count() == 0
        release.set()
        rows = page.locator(".tabulator-row")
        expect(rows).to_have_count(5, timeout=45_000)  # the root, leaf ×3 and 3 leaves
        expect(page.locator(".aiflow-totals")).to_contain_text("completed")
        expect(page.get_by_text(f"loading run {handle.run_id}")).to_have_count(0)
        rows.filter(has_text="leaf [1]").click()  # the page's callbacks work
        expect(page.locator(".aiflow-detail")).to_contain_text("leaf")
        screenshot(page, "viewer-run-aside")


def test_unknown_run_built_aside_says_not_found() -> None:
    with served() as url, chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}?run=no-such-run")
        expect(page.get_by_text("not found")).to_be_visible(timeout=45_000)


def test_a_page_built_while_bokeh_is_still_making_the_session_is_shown_and_kept_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race of the CI failure (stop 20): the thread finished while the request was
    still constructing the document's ServerSession (after its change hook, before its
    callback group). Bokeh's hook raised on the thread (AttributeError), which took the
    session to be gone and stopped the page (its live follower), though Bokeh still ran the
    swap: a page shown but no longer following. Here the session's construction is held
    at exactly that point until the page is built and the thread has handed it over."""
    handle = fan_out.start(n=2)
    assert handle.result(timeout=30) == 2
    built, stopped = threading.Event(), threading.Event()

    class Built(RunPage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.set()

        def stop(self) -> None:
            stopped.set()
            super().stop()

    held: list[bool] = []

    class HeldGroup(bokeh_session.DocumentCallbackGroup):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not held:  # the first session only: the run page's
                held.append(True)
                assert built.wait(30), "the page was not built"
                time.sleep(0.5)  # the thread hands the page over meanwhile
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(app, "RunPage", Built)
    monkeypatch.setattr(bokeh_session, "DocumentCallbackGroup", HeldGroup)
    with served() as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}?run={handle.run_id}")
        expect(page.locator(".aiflow-totals")).to_contain_text("completed", timeout=45_000)
        expect(page.get_by_text(f"loading run {handle.run_id}")).to_have_count(0)
        assert held == [True]
        assert not stopped.is_set()  # shown, and still following its run


def test_a_page_built_aside_is_shown_when_another_onload_callback_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Panel runs a session's onload callbacks in turn and loses those after one that
    raises (and never marks the session loaded): the built page must not be one of them."""
    handle = fan_out.start(n=2)
    assert handle.result(timeout=30) == 2
    follow = app.follow_browser

    def follow_and_fail(page: Any) -> None:
        follow(page)

        def broken() -> None:
            raise RuntimeError("another onload callback failed")

        pn.state.onload(broken)

    monkeypatch.setattr(app, "follow_browser", follow_and_fail)
    monkeypatch.setattr(aside, "LOADED_WAIT_S", 3.0)
    # Bokeh's patch_curdoc pushes the session's document on a process-wide stack with no
    # finally: the raising callback leaves it there, and every later Panel model built in
    # this process (the other viewer tests) would take it for the current document. A copy
    # of the stack for this test keeps the leak inside it.
    monkeypatch.setattr(bokeh_doc, "_PATCHED_CURDOCS", list(bokeh_doc._PATCHED_CURDOCS))
    with served() as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}?run={handle.run_id}")
        expect(page.locator(".aiflow-totals")).to_contain_text("completed", timeout=45_000)
        expect(page.get_by_text(f"loading run {handle.run_id}")).to_have_count(0)
