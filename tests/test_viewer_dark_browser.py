"""Dark mode following the browser in a real Chromium (``color_scheme`` emulation, every
non-loopback request blocked): with no ``?theme`` the dashboard is dark when the browser
prefers dark and light when it prefers light, with no reload; ``?theme=light`` and
``?theme=dark`` override; a parked run's wait form renders in the dark.
Screenshots: test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from support.browser import chromium, offline_page, screenshot, viewer_server
from support.trace import traced, wait_for

pytestmark = [pytest.mark.browser]

VIEWPORT = {"width": 1400, "height": 1100}
BG_JS = "e => getComputedStyle(e).backgroundColor"


def _dark(color: str) -> bool:
    """An ``rgb(r, g, b)`` colour darker than mid-grey (transparent: the white canvas)."""
    parts = [float(x) for x in color[color.index("(") + 1 : -1].split(",")]
    if len(parts) == 4 and parts[3] == 0:
        return False
    return sum(parts[:3]) < 3 * 128


def _colors(page: Any) -> dict[str, str]:
    return {
        "body": page.locator("body").evaluate(BG_JS),
        "table": page.locator(".tabulator-header").first.evaluate(BG_JS),
        "select": page.locator("select").first.evaluate(BG_JS),
    }


def _wait_colors(page: Any, dark: bool, what: str) -> None:
    """Until the page, its tables and its selects are all dark (or all light)."""
    wait_for(
        lambda: all(_dark(v) == dark for v in _colors(page).values()),
        what=lambda: f"{what}: {_colors(page)}",
    )


def test_the_dashboard_follows_the_browsers_color_scheme_and_the_query_overrides() -> None:
    handle = traced.start(tag="scheme", fan=1)
    handle.result(timeout=30)
    with viewer_server() as url, chromium() as browser:
        for scheme, query in (("dark", ""), ("light", ""), ("dark", "?theme=light")):
            page, attempted = offline_page(
                browser, f"{url}{query}", viewport=VIEWPORT, color_scheme=scheme
            )
            run = page.locator(".tabulator-cell a", has_text=handle.run_id)
            expect(run).to_be_visible(timeout=45_000)
            page.evaluate("window.aiflowLoadedOnce = true")  # gone if the page reloads
            dark = scheme == "dark" and not query
            _wait_colors(page, dark, f"{scheme} browser, {query or 'no query'}")
            assert page.evaluate("window.aiflowLoadedOnce") is True
            if dark:
                screenshot(page, "viewer-dark-auto-runs")
                run.click()
                expect(page.locator(".aiflow-totals")).to_contain_text("completed", timeout=45_000)
                _wait_colors(page, True, "the run page")
                screenshot(page, "viewer-dark-auto-run")
            assert attempted == []
            page.context.close()


def test_a_parked_runs_wait_form_renders_in_the_dark(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from aiflow_nb import RunHandle
    from aiflow_nb.ops.submit import submit

    from support.ops import fleet

    with fleet(tmp_path) as start, viewer_server() as url, chromium() as browser:
        start().ready()
        signalled = RunHandle(submit("signalled", {}))
        wait_for(lambda: signalled.status == "waiting", what="the run to park")
        page, attempted = offline_page(
            browser, f"{url}?run={signalled.run_id}", viewport=VIEWPORT, color_scheme="dark"
        )
        editor = page.locator(".aiflow-wait textarea")
        expect(editor).to_be_visible(timeout=45_000)
        assert _dark(page.locator("body").evaluate(BG_JS))
        assert _dark(editor.evaluate(BG_JS))
        screenshot(page, "viewer-dark-wait-form")
        editor.fill('{"n": 3}')
        editor.blur()
        page.get_by_role("button", name="Submit").click()
        assert signalled.result(timeout=30) == {"n": 3}
        assert attempted == []
