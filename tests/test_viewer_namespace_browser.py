"""The dashboard's namespace selector in a real Chromium (every non-loopback request
blocked): switching lists the other namespace's runs in the same session, a run page
opened from there follows the run live, links keep ``?ns=``, and an unknown namespace
in the URL gets a page saying so. Screenshots: test-artifacts/."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

import aiflow_nb

from support.browser import chromium, offline_page, screenshot, viewer_server
from support.trace import open_gate, traced

pytestmark = [pytest.mark.browser]

VIEWPORT = {"width": 1400, "height": 1100}


def test_the_selector_switches_namespace_and_a_run_page_there_follows_live(
    namespace: str,
) -> None:
    mine = traced.start(tag="mine", fan=1)
    mine.result(timeout=30)
    other = f"{namespace}-other"
    # this process (and its local worker) now writes in `other`; the viewer subprocess
    # lists `namespace`, its AIFLOW_NAMESPACE
    aiflow_nb.configure(namespace=other)
    done = traced.start(tag="theirs", fan=1)
    done.result(timeout=30)
    gate = f"ns{time.time_ns()}"
    live = traced.start(tag="live", gate=gate, fan=2)
    with viewer_server() as url, chromium() as browser:
        page, attempted = offline_page(browser, url, viewport=VIEWPORT)
        mine_row = page.locator(".tabulator-cell a", has_text=mine.run_id)
        expect(mine_row).to_be_visible(timeout=45_000)
        expect(page.locator(".aiflow-namespace")).to_contain_text(f"namespace {namespace}")
        assert page.get_by_text(done.run_id).count() == 0

        page.evaluate("window.aiflowLoadedOnce = true")  # gone if the page reloads
        page.locator(".aiflow-ns-select select").select_option(other)
        theirs = page.locator(".tabulator-cell a", has_text=done.run_id)
        expect(theirs).to_be_visible(timeout=45_000)
        expect(page.locator(".tabulator-cell a", has_text=live.run_id)).to_be_visible()
        expect(mine_row).to_have_count(0)
        expect(page.locator(".aiflow-namespace")).to_contain_text(f"namespace {other}")
        expect(page).to_have_url(f"{url}?ns={other}")  # same session: a reload keeps it
        assert page.evaluate("window.aiflowLoadedOnce") is True
        screenshot(page, "viewer-namespace-switched")

        page.locator(".tabulator-cell a", has_text=live.run_id).click()
        expect(page).to_have_url(f"{url}?ns={other}&run={live.run_id}", timeout=45_000)
        tree = page.locator(".tabulator-row")
        expect(tree.filter(has_text="chat")).to_contain_text("running", timeout=45_000)
        expect(page.locator(".aiflow-live-text")).to_contain_text("alpha")
        open_gate(gate)  # in `other`, as this process is
        live.result(timeout=60)
        expect(page.locator(".aiflow-totals")).to_contain_text("completed", timeout=45_000)
        expect(page.locator(".aiflow-live-text")).to_contain_text("alpha beta gamma")
        expect(tree.filter(has_text="boom_with_fallback")).to_have_count(1)  # after the gate
        expect(page.locator(".aiflow-error")).to_have_count(0)  # live updates never stopped
        screenshot(page, "viewer-namespace-run-live")
        page.get_by_role("link", name="← all runs").click()
        expect(page.locator(".tabulator-cell a", has_text=done.run_id)).to_be_visible(
            timeout=45_000
        )
        expect(page.locator(".aiflow-ns-select select")).to_have_value(other)

        page.goto(f"{url}?ns=no-such-namespace&run={live.run_id}")
        missing = page.locator(".aiflow-unknown-ns")
        expect(missing).to_contain_text("namespace no-such-namespace not found", timeout=45_000)
        expect(missing.get_by_role("link", name=other)).to_be_visible()
        assert "Traceback" not in page.content()
        screenshot(page, "viewer-namespace-unknown")
        assert attempted == []
