"""The dashboard and the inline views with no internet: Chromium with every request
to a non-loopback host aborted (and counted: the test fails on one), the runs page, a
run page, and ``aiflow_nb.show()`` / ``%aiflow viewer`` in a real JupyterLab and a real
classic Notebook (7) page.
Screenshots: test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import aiflow_nb
from aiflow_nb.access.runs import namespaces
from aiflow_viewer.runs_page import NAMESPACES_SHOWN

from support.browser import block_network, chromium, offline_page, screenshot, viewer_server
from support.jupyter import jupyter_lab, jupyter_notebook, write_notebook
from support.outage import private_redis_fixture  # noqa: F401  (the private_redis fixture)
from support.trace import traced

pytestmark = [pytest.mark.browser]

VIEWPORT = {"width": 1400, "height": 1100}
KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.sessionContext && w.sessionContext.session
            && w.sessionContext.session.kernel);
}"""


@pytest.mark.parametrize(
    ("serve", "where"), [(jupyter_lab, "jupyterlab"), (jupyter_notebook, "notebook")]
)
def test_show_and_the_viewer_magic_render_offline_in_a_fresh_kernel(
    tmp_path: Path, serve: Any, where: str
) -> None:
    """In JupyterLab (``/lab/tree/...``) and in the classic Notebook 7 page
    (``/notebooks/...``)."""
    handle = traced.start(tag="nb", fan=2)
    handle.result(timeout=30)
    name = write_notebook(
        tmp_path,
        "show.ipynb",
        [
            f"import aiflow_nb\naiflow_nb.show({handle.run_id!r}, follow=False)",
            "%load_ext aiflow_nb",
            "%aiflow viewer",
        ],
    )
    with serve(tmp_path) as lab, chromium() as browser:
        page, attempted = offline_page(browser, lab.notebook_url(name), viewport=VIEWPORT)
        page.wait_for_function(KERNEL_READY, timeout=90_000)
        lab_url = page.url
        assert ("/notebooks/" if where == "notebook" else "/lab/tree/") in lab_url
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        cells = page.locator(".jp-CodeCell")
        shown, viewer = cells.nth(0), cells.nth(2)
        # the first display of a fresh kernel renders: span table, totals, Bokeh canvas
        expect(shown.locator(".tabulator-row", has_text="flaky").first).to_be_visible(
            timeout=90_000
        )
        expect(shown.locator(".aiflow-totals")).to_contain_text("completed")
        expect(shown.locator("canvas").first).to_be_visible()
        expect(shown.locator("a", has_text="all runs")).to_have_count(0)
        # column headers keep their titles (not cut to one letter)
        status = shown.locator(".tabulator-col", has_text="status").first
        assert status.bounding_box()["width"] >= 60  # type: ignore[index]

        run_cell = viewer.locator(".tabulator-cell", has_text=handle.run_id).first
        expect(run_cell).to_be_visible(timeout=60_000)
        screenshot(page, f"offline-{where}-runs")
        # the run opens in the same output; the notebook page stays, outputs and all.
        # (A click that lands while Lab activates the cell can be lost; a user clicks again.)
        totals = viewer.locator(".aiflow-totals")
        for _ in range(4):
            run_cell.click()
            try:
                expect(totals).to_contain_text("completed", timeout=8_000)
                break
            except AssertionError:
                continue
        expect(totals).to_contain_text("completed")
        expect(viewer.locator(".tabulator-row", has_text="flaky").first).to_be_visible()
        assert page.url == lab_url
        expect(shown.locator(".aiflow-totals")).to_contain_text("completed")
        screenshot(page, f"offline-{where}-show")
        viewer.get_by_role("button", name="← all runs").click()
        expect(viewer.locator(".tabulator-cell", has_text=handle.run_id).first).to_be_visible()
        assert attempted == []


def test_the_standalone_runs_and_run_pages_render_offline(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = traced.start(tag="sa", fan=1)
    handle.result(timeout=30)
    other = f"{namespace}-quickstart"  # a run in another namespace (as the quickstart's)
    monkeypatch.setenv("AIFLOW_NAMESPACE", other)
    aiflow_nb.configure()
    traced.start(tag="elsewhere", fan=1).result(timeout=30)
    monkeypatch.setenv("AIFLOW_NAMESPACE", namespace)
    aiflow_nb.configure()
    with viewer_server() as url, chromium() as browser:
        page, attempted = offline_page(browser, url, viewport=VIEWPORT)
        run_link = page.locator(".tabulator-cell a", has_text=handle.run_id)
        expect(run_link).to_be_visible(timeout=45_000)
        shown = page.locator(".aiflow-namespace")
        expect(shown).to_contain_text(f"namespace {namespace}")
        assert other in namespaces()
        if namespaces().index(other) < NAMESPACES_SHOWN:  # the session Redis has many
            expect(shown).to_contain_text(other)
        screenshot(page, "offline-runs-page")
        run_link.click()
        expect(page.locator(".aiflow-totals")).to_contain_text("completed", timeout=45_000)
        expect(page.locator(".tabulator-row", has_text="flaky").first).to_be_visible()
        expect(page.locator("canvas").first).to_be_visible()
        assert f"run={handle.run_id}" in page.url
        screenshot(page, "offline-run-page")
        assert attempted == []


def test_redis_down_shows_a_friendly_page_that_recovers_by_itself(private_redis) -> None:  # type: ignore[no-untyped-def]
    handle = traced.start(tag="down", fan=1)
    handle.result(timeout=30)
    private_redis.kill()
    with viewer_server() as url, chromium() as browser:
        page, attempted = offline_page(browser, url, viewport=VIEWPORT)
        note = page.locator(".aiflow-unreachable")
        expect(note).to_contain_text("Redis is unreachable", timeout=45_000)
        expect(note).to_contain_text(private_redis.url)
        assert "Traceback" not in page.content()
        screenshot(page, "viewer-redis-down")
        private_redis.restart()
        # no reload: the same page turns into the runs table
        run = page.locator(".tabulator-cell a", has_text=handle.run_id)
        expect(run).to_be_visible(timeout=45_000)
        expect(note).to_have_count(0)
        # down again while the table is open: said above the table, gone once back
        private_redis.kill()
        expect(page.locator(".aiflow-unreachable")).to_be_visible(timeout=45_000)
        expect(run).to_be_visible()
        screenshot(page, "viewer-redis-down-again")
        private_redis.restart()
        expect(page.locator(".aiflow-unreachable")).to_be_hidden(timeout=45_000)
        assert attempted == []


def test_dark_mode_by_query_argument_darkens_the_tables() -> None:
    handle = traced.start(tag="dark", fan=1)
    handle.result(timeout=30)
    header_js = "e => getComputedStyle(e).backgroundColor"
    with viewer_server() as url, chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        attempted = block_network(context)
        colors = []
        for query in ("?theme=dark", ""):
            page = context.new_page()
            page.goto(f"{url}{query}")
            expect(page.locator(".tabulator-cell a", has_text=handle.run_id)).to_be_visible(
                timeout=45_000
            )
            colors.append(page.locator(".tabulator-header").first.evaluate(header_js))
            if query:
                screenshot(page, "viewer-dark-runs")
        assert colors[0] != colors[1], colors
        assert attempted == []
