"""The run page's actions bar in Chromium: each button changes the run as the CLI would
(resume of a failed run -> it completes; rerun -> a new run with ``forked_from``, opened
in the page; cancel asks first, then the run is ``cancelled`` in Redis) and a button is
enabled only while its action applies to the run's status."""

from __future__ import annotations

import time

from playwright.sync_api import expect

import aiflow_nb

from support.browser import chromium, screenshot, viewer_server
from support.trace import fails_until_open, open_gate, traced, wait_for

VIEWPORT = {"width": 1400, "height": 1100}


def test_resume_rerun_and_cancel_from_the_run_page() -> None:
    gate = f"act{time.time_ns()}"
    failed = fails_until_open.start(gate=gate)
    wait_for(lambda: failed.status == "failed", what="the run to fail")
    with viewer_server() as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?run={failed.run_id}")
        resume = page.get_by_role("button", name="Resume")
        expect(resume).to_be_enabled(timeout=45_000)
        expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_disabled()
        screenshot(page, "viewer-actions-failed")
        open_gate(gate)
        resume.click()
        wait_for(lambda: failed.status == "completed", what="the resumed run to complete")
        # live: the page sees it completed, Resume goes off and Rerun stays on
        expect(resume).to_be_disabled(timeout=30_000)
        page.get_by_role("button", name="Rerun").click()
        page.wait_for_url(lambda u: "run=" in u and failed.run_id not in u, timeout=30_000)
        new_id = page.url.split("run=")[1].split("&")[0]
        assert aiflow_nb.attach(new_id).record()["forked_from"] == failed.run_id
        screenshot(page, "viewer-actions-rerun")

        blocked = f"act{time.time_ns()}"
        running = traced.start(tag="act", gate=blocked, fan=1)
        wait_for(lambda: running.status == "running", what="running")
        page.goto(f"{url}?run={running.run_id}")
        cancel = page.get_by_role("button", name="Cancel", exact=True)
        expect(cancel).to_be_enabled(timeout=45_000)
        expect(page.get_by_role("button", name="Resume")).to_be_disabled()
        cancel.click()
        confirm = page.get_by_role("button", name="Yes, cancel the run")
        expect(confirm).to_be_visible(timeout=30_000)
        screenshot(page, "viewer-actions-confirm")
        assert running.status == "running"  # nothing happens before the confirmation
        confirm.click()
        wait_for(lambda: running.status == "cancelled", what="the run to be cancelled")
        expect(cancel).to_be_disabled(timeout=30_000)


def test_the_viewer_queues_a_resume_and_never_executes_it() -> None:
    """``aiflow viewer`` as a user starts it (no AIFLOW_LOCAL_WORKER): Resume with no worker
    anywhere leaves the run queued for the workers; the viewer starts none of its own."""
    from aiflow_nb.ops.local import ensure_local_worker, stop_local_worker
    from aiflow_nb.ops.presence import live_workers

    gate = f"act{time.time_ns()}"
    failed = fails_until_open.start(gate=gate)
    wait_for(lambda: failed.status == "failed", what="the run to fail")
    stop_local_worker()
    open_gate(gate)
    with viewer_server(local_worker=None) as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?run={failed.run_id}")
        resume = page.get_by_role("button", name="Resume")
        expect(resume).to_be_enabled(timeout=45_000)
        resume.click()
        wait_for(lambda: failed.status == "queued", what="the resume to queue the run")
        time.sleep(3)  # a worker the viewer started would have registered and taken it
        assert live_workers() == []
        assert failed.status == "queued"
    ensure_local_worker(force=True)  # a real worker takes it from the queue
    wait_for(lambda: failed.status == "completed", what="a worker to complete the run")
