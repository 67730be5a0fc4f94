"""The run page's live output and progress on the server side: a picker over every span
that streamed, text kept after the run ends, progress bars with done/total and message."""

from __future__ import annotations

import asyncio

import aiflow_nb as af
from aiflow_viewer.run_page import RunPage

from support.trace import fan_out


@af.component
async def live_talk(word: str, n: int) -> str:
    for i in range(n):
        af.progress(i + 1, n, f"{word} {i + 1}")
        yield f"{word}{i} "


@af.workflow(name="live_two_streams")
async def two_streams() -> list[str]:
    return list(await asyncio.gather(live_talk("alpha", 3), live_talk("omega", 2)))


def test_finished_run_keeps_each_streamed_text_and_a_picker_chooses_one() -> None:
    handle = two_streams.start()
    handle.result(timeout=30)
    page = RunPage(handle.run_id, follow=False)
    spans = {s.inputs["word"]: s for s in page.tree.spans.values() if s.name == "live_talk"}
    assert "no streamed output" not in page.live.object
    assert set(page.live_choice.options.values()) == {s.span_id for s in spans.values()}
    assert page.live_choice.visible
    page.live_choice.value = spans["alpha"].span_id
    assert "alpha0 alpha1 alpha2" in page.live.object and "omega" not in page.live.object
    page.live_choice.value = spans["omega"].span_id
    assert "omega0 omega1" in page.live.object and "alpha0" not in page.live.object
    page.redraw()  # a redraw keeps the pick
    assert "omega0 omega1" in page.live.object
    page.select(spans["alpha"].span_id)  # selecting a span that streamed shows its text
    assert "alpha0 alpha1 alpha2" in page.live.object
    notes = [row.objects[2].object for row in page.progress.objects]
    assert sorted(notes) == sorted(
        [
            '<span class="aiflow-progress-note"><b>3/3</b> alpha 3</span>',
            '<span class="aiflow-progress-note"><b>2/2</b> omega 2</span>',
        ]
    )


def test_finished_run_that_never_streamed_says_so() -> None:
    handle = fan_out.start(n=2)
    handle.result(timeout=30)
    page = RunPage(handle.run_id, follow=False)
    assert page.live.object == "<i>this run streamed no output</i>"
    assert not page.live_choice.visible
