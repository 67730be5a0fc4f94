"""The dashboard in a real Chromium: runs page, live run page, resumed (reopened) trace,
span detail. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

import aiflow_nb

from support.browser import BARS_JS, LABELS_JS, PAN_JS, chromium, screenshot, viewer_server
from support.trace import MODEL, failing, fan_out, open_gate, traced, wait_for

pytestmark = [pytest.mark.browser]

VIEWPORT = {"width": 1400, "height": 1100}


def _bars(page) -> dict:  # type: ignore[no-untyped-def]
    return page.evaluate(BARS_JS) or {"right": [], "running": [], "label": []}


def test_live_run_appears_grows_and_reopens_with_full_history() -> None:
    gate = f"live{time.time_ns()}"
    with viewer_server() as url, chromium() as browser:
        runs = browser.new_page(viewport=VIEWPORT)
        runs.goto(url)
        expect(runs.locator(".tabulator").first).to_be_visible(timeout=45_000)
        handle = traced.start(tag="ui", gate=gate, fan=3)
        row = runs.locator(".tabulator-row", has_text=handle.run_id)
        expect(row).to_be_visible(timeout=45_000)  # new run, no reload
        expect(row).to_contain_text("running")
        screenshot(runs, "viewer-runs-live")

        live = browser.new_page(viewport=VIEWPORT)
        live.goto(f"{url}?run={handle.run_id}")
        tree = live.locator(".tabulator-row")
        expect(tree.filter(has_text="chat")).to_contain_text("running", timeout=45_000)
        expect(tree).to_have_count(3)  # traced, flaky, chat so far
        expect(live.locator(".aiflow-live-text")).to_contain_text("alpha")
        first = wait_for(
            lambda: (b := _bars(live)) and sum(b["running"]) == 2 and b,
            what="two running bars in the browser",
        )
        time.sleep(0.8)
        later = _bars(live)
        grew = [
            later["right"][i] - first["right"][i]
            for i, running in enumerate(first["running"])
            if running
        ]
        assert len(grew) == 2 and all(g > 0.3 for g in grew), (first, later)
        screenshot(live, "viewer-run-live")

        open_gate(gate)
        handle.result(timeout=60)
        expect(tree).to_have_count(8, timeout=45_000)  # + leaf ×3, 3 leaves, fallback
        expect(live.locator(".aiflow-totals")).to_contain_text("completed")
        expect(row).to_contain_text("completed", timeout=45_000)  # runs page, no reload
        assert sum(_bars(live)["running"]) == 0

        reopened = browser.new_page(viewport=VIEWPORT)
        reopened.goto(f"{url}?run={handle.run_id}")
        rows = reopened.locator(".tabulator-row")
        expect(rows).to_have_count(8, timeout=45_000)
        expect(reopened.locator(".aiflow-totals")).to_contain_text("completed")
        expect(reopened.locator(".tot-retries")).to_contain_text("1")
        expect(reopened.locator(".tot-tokens")).to_contain_text("10")
        rows.filter(has_text="flaky").click()
        detail = reopened.locator(".aiflow-detail")
        expect(detail).to_contain_text("ConnectionError: simulated provider outage")
        expect(detail).to_contain_text("attempts that failed")
        rows.filter(has_text="chat").click()
        expect(detail).to_contain_text(MODEL)
        expect(detail).to_contain_text("7 in / 3 out")
        expect(detail).to_contain_text("alpha beta gamma")
        screenshot(reopened, "viewer-run-reopened")


def test_failed_run_detail_big_run_labels_and_unknown_run() -> None:
    handle = failing.start(x=9)
    with pytest.raises(aiflow_nb.RunFailed):
        handle.result(timeout=10)
    big = fan_out.start(n=80)
    assert big.result(timeout=30) == 80
    with viewer_server() as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?run={handle.run_id}")
        rows = page.locator(".tabulator-row")
        expect(rows).to_have_count(2, timeout=45_000)
        rows.filter(has_text="boom").click()
        detail = page.locator(".aiflow-detail")
        expect(detail).to_contain_text("ComponentFailed")
        expect(detail).to_contain_text("bad value 9")
        expect(detail).to_contain_text("Traceback (most recent call last)")
        screenshot(page, "viewer-run-failed")
        page.goto(f"{url}?run={big.run_id}")
        wait_for(lambda: len(_bars(page)["right"]) == 81, what="81 bars")
        labels = page.evaluate(LABELS_JS)
        assert labels[0] == "trace_fan_out" and 25 <= len(labels) <= 35  # the rows in view
        page.evaluate(PAN_JS, 60)
        wait_for(lambda: "leaf [60]" in " ".join(page.evaluate(LABELS_JS)), what="labels follow")
        assert "trace_fan_out" not in page.evaluate(LABELS_JS)
        # one scrolling table, no pages: Tabulator draws only the rows near the view
        assert 0 < page.locator(".tabulator-row").count() < 82
        assert page.locator(".tabulator-page").count() == 0
        page.goto(f"{url}?run=no-such-run")
        expect(page.get_by_text("not found")).to_be_visible(timeout=45_000)
        page.goto(url)
        # the filter round-trips through the Panel server: allow a loaded machine its time
        page.locator(".aiflow-status-select select").select_option("failed")
        row = page.locator(".tabulator-row", has_text=handle.run_id)
        expect(row).to_be_visible(timeout=45_000)
        page.locator(".aiflow-status-select select").select_option("completed")
        expect(row).to_have_count(0, timeout=45_000)


def test_the_run_page_answers_a_parked_run_with_its_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A worker process parks a run; its page in Chromium shows the open wait's form
    (Approve / Reject for a bool); clicking answers and the run resumes (answered by
    ``dashboard``)."""
    from aiflow_nb import RunHandle
    from aiflow_nb.ops.submit import submit

    from support.ops import fleet

    with fleet(tmp_path) as start, viewer_server() as url, chromium() as browser:
        start().ready()
        asking = RunHandle(submit("approval", {}))
        wait_for(lambda: asking.status == "waiting", what="the run to park")
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?run={asking.run_id}")
        expect(page.locator(".aiflow-wait-prompt")).to_contain_text("Approve?", timeout=45_000)
        screenshot(page, "viewer-wait-form")
        page.get_by_role("button", name="Reject").click()
        expect(page.locator(".aiflow-wait-status")).to_contain_text("answered", timeout=30_000)
        assert asking.result(timeout=30) == {"answer": False}
        expect(page.locator(".aiflow-wait-prompt")).to_have_count(0, timeout=30_000)
    received = [e.data for e in asking.events(follow=False) if e.type == "input.received"]
    assert [d["by"] for d in received] == ["dashboard"]


def test_the_run_page_answers_a_parked_signal_with_its_json_editor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A parked signal's page shows a JSON editor; bad JSON is refused in the form, good
    JSON answers and the run resumes (answered by ``dashboard``)."""
    from aiflow_nb import RunHandle
    from aiflow_nb.ops.submit import submit

    from support.ops import fleet

    with fleet(tmp_path) as start, viewer_server() as url, chromium() as browser:
        start().ready()
        signalled = RunHandle(submit("signalled", {}))
        wait_for(lambda: signalled.status == "waiting", what="the run to park")
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?run={signalled.run_id}")
        prompt = page.locator(".aiflow-wait-prompt")
        expect(prompt).to_contain_text("waits for event 'go'", timeout=45_000)
        editor = page.locator(".aiflow-wait textarea")  # the form's own, nothing else's
        expect(editor).to_be_visible()
        screenshot(page, "viewer-wait-json-editor")
        editor.fill("not json")
        editor.blur()
        page.get_by_role("button", name="Submit").click()
        expect(page.locator(".aiflow-wait-status")).to_contain_text("not JSON", timeout=30_000)
        editor.fill('{"n": 2}')
        editor.blur()
        page.get_by_role("button", name="Submit").click()
        assert signalled.result(timeout=30) == {"n": 2}
    received = [e.data for e in signalled.events(follow=False) if e.type == "input.received"]
    assert [d["by"] for d in received] == ["dashboard"]
