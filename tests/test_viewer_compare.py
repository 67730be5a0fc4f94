"""The dashboard's compare page (``/?compare=A,B``) in a real Chromium: both runs' steps
side by side, the changed steps highlighted, the diff of the selected step, and a clear
message for an unknown id. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import aiflow_nb as af

from support.browser import chromium, screenshot, viewer_server

pytestmark = [pytest.mark.browser]

VIEWPORT = {"width": 1400, "height": 1000}
STYLE = {"suffix": "v1"}


@af.component
def cmp_fetch(x: int) -> dict[str, int]:
    return {"x": x, "y": x * 10}


@af.component
def cmp_word(d: dict[str, int]) -> str:
    return f"{d['y']}-{STYLE['suffix']}"


@af.component
def cmp_shout(s: str) -> str:
    return s.upper()


@af.workflow
def viewer_compare_chain(x: int) -> str:
    return cmp_shout(cmp_word(cmp_fetch(x)))


def test_compare_page_shows_both_runs_and_highlights_the_changed_steps() -> None:
    first = viewer_compare_chain.start(x=2)
    assert first.result(timeout=20) == "20-V1"
    STYLE["suffix"] = "v2"
    second = af.rerun(first, steps=["cmp_word"])
    assert second.result(timeout=20) == "20-V2"
    with viewer_server() as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?compare={first.run_id},{second.run_id}")
        table = page.locator(".aiflow-compare table")
        expect(table).to_be_visible(timeout=45_000)
        expect(page.get_by_text(first.run_id).first).to_be_visible()
        expect(page.get_by_text(second.run_id).first).to_be_visible()
        changed = page.locator("tr.aiflow-changed")
        expect(changed).to_have_count(3)  # cmp_word, cmp_shout it feeds, the workflow
        for name in ("viewer_compare_chain", "cmp_word", "cmp_shout"):
            expect(changed.filter(has_text=name)).to_have_count(1)
        same = page.locator("tr.aiflow-same", has_text="cmp_fetch")
        background = "e => getComputedStyle(e.querySelector('td')).backgroundColor"
        assert changed.nth(0).evaluate(background) == "rgb(254, 243, 199)"  # highlighted
        assert same.evaluate(background) != "rgb(254, 243, 199)"
        expect(same).to_contain_text(f"replayed from {first.run_id}")
        # the diff of the first changed step is shown at once
        diff = page.locator(".aiflow-diff")
        expect(diff.locator(".del")).to_contain_text('"20-v1"')
        expect(diff.locator(".add")).to_contain_text('"20-v2"')
        screenshot(page, "viewer-compare")
        page.locator("select").select_option(label=_key(page, "cmp_fetch"))
        expect(diff).to_contain_text("are equal")
        page.goto(f"{url}?compare={first.run_id},no-such-run")
        expect(page.get_by_text("no-such-run")).to_be_visible(timeout=45_000)
        expect(page.get_by_text("cannot compare")).to_be_visible()
        page.goto(f"{url}?compare={first.run_id}")
        expect(page.get_by_text("two run ids")).to_be_visible(timeout=45_000)


def _key(page, name: str) -> str:  # type: ignore[no-untyped-def]
    options = page.locator("select option").all_inner_texts()
    return next(o for o in options if name in o)
