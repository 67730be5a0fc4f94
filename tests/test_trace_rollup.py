"""Numbers that add up, on real runs: tokens and cost rolled up through parent spans
(the real openai SDK against the local LLM server), shown to 4 significant digits;
tracebacks with framework frames folded; ``publish()`` events in the detail and the
timeline; progress notes with done/total and the message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import aiflow_nb as af
from aiflow_nb.events.reader import read_events
from aiflow_nb.llm import AsyncOpenAI, FakeLLMServer
from aiflow_nb.notebook.render import row_label
from aiflow_nb.trace import SpanTree, publish_points, timeline_rows
from aiflow_nb.trace.totals import money
from aiflow_nb.trace.tracebacks import fold, framework_frame
from aiflow_viewer.detail import progress_note, span_html

from support.llm import fake_llm, served
from support.trace import failing


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with fake_llm() as s:
        yield s


def _tree(run_id: str) -> SpanTree:
    return SpanTree.from_events(read_events(run_id, follow=False))


def test_parents_show_the_sum_of_their_subtree_and_the_root_the_run_total(
    server: FakeLLMServer,
) -> None:
    client = AsyncOpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")

    async def ask(q: str, n: int) -> str:
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=n, messages=[{"role": "user", "content": q}]
        )
        return reply.choices[0].message.content or ""

    @af.component
    async def section(topic: str) -> str:
        return await ask(f"outline {topic}", 12) + await ask(f"write {topic}", 20)

    @af.workflow(name="rollup_report")
    async def report(topics: list[str]) -> list[str]:
        return list(await asyncio.gather(*(section(t) for t in topics)))

    handle = report.start(topics=["a", "b", "c"])
    handle.result(timeout=60)
    tree = _tree(handle.run_id)
    rows = {r.key: r for r in tree.rows()}
    assert len(served(server)) == 6
    for span in tree.spans.values():
        if not span.children:
            continue
        kids = [rows[c] for c in span.children]
        own_tokens = int(span.attributes.get("gen_ai.usage.input_tokens") or 0) + int(
            span.attributes.get("gen_ai.usage.output_tokens") or 0
        )
        row = rows[span.span_id]
        assert row.tokens == own_tokens + sum(k.tokens for k in kids) > 0
        assert row.cost == pytest.approx(
            float(span.attributes.get("aiflow.cost_usd") or 0) + sum(k.cost for k in kids)
        )
    [root] = tree.roots()
    t = tree.totals
    assert (
        rows[root.span_id].tokens
        == t.tokens
        == sum(r["input_tokens"] + r["output_tokens"] for r in served(server))
    )
    assert rows[root.span_id].cost == pytest.approx(t.cost) and t.cost > 0
    # the notebook widget's tree shows the same roll-up on parent rows
    assert row_label(root, tree).endswith(f"Σ {t.tokens} tokens · {money(t.cost)}")
    leaf = next(s for s in tree.spans.values() if not s.children)
    assert "Σ" not in row_label(leaf, tree)
    [group] = [r for r in rows.values() if r.group and r.name == "section"]  # ×3: the sum
    members = [rows[s.span_id] for s in tree.spans.values() if s.name == "section"]
    assert group.tokens == sum(m.tokens for m in members) == t.tokens
    # the section spans have no usage of their own: the detail says what is under them
    sec = next(s for s in tree.spans.values() if s.name == "section")
    html = span_html(tree, sec)
    assert f"cost <b>{money(rows[sec.span_id].cost)}</b>" in html
    assert "$0.0000<" not in html and money(rows[sec.span_id].cost) != "$0"


def test_money_keeps_four_significant_digits() -> None:
    assert money(0.0021) == "$0.002100"
    assert money(0.0000123456) == "$0.00001235"
    assert money(3.2) == "$3.20"
    assert money(0) == "$0"
    assert money(4.2e-9) == "$4.200e-09"


def test_traceback_of_a_real_failure_folds_framework_frames() -> None:
    handle = failing.start(x=3)
    with pytest.raises(af.RunFailed):
        handle.result(timeout=20)
    tree = _tree(handle.run_id)
    root = next(s for s in tree.spans.values() if s.name == "trace_failing")
    text = root.error["traceback"]  # type: ignore[index]
    segments = fold(text)
    assert "\n".join(seg.text for seg in segments) == text.rstrip("\n")
    shown = "\n".join(seg.text for seg in segments if not seg.folded)
    hidden = "\n".join(seg.text for seg in segments if seg.folded)
    assert "support/trace.py" in shown and 'raise ValueError(f"bad value {x}")' in shown
    assert "invocation.py" not in shown and "invocation.py" in hidden
    assert "ValueError: bad value 3" in shown and "ComponentFailed" in shown
    assert sum(seg.frames for seg in segments) == text.count("aiflow_nb/")
    html = span_html(tree, root)
    assert '<details class="aiflow-tb-fold"><summary>2 framework frames</summary>' in html
    assert framework_frame("/x/site-packages/tenacity/__init__.py")
    assert framework_frame("/usr/lib/python3.11/asyncio/events.py")
    assert not framework_frame("/home/me/project/steps.py")


def test_publish_events_show_in_the_span_detail_and_on_the_timeline() -> None:
    @af.component
    def crawl(urls: list[str]) -> int:
        for i, url in enumerate(urls):
            af.publish("page", {"url": url, "n": i})
            af.progress(i + 1, len(urls), f"fetched {url}")
        return len(urls)

    @af.workflow(name="publish_flow")
    def pub(urls: list[str]) -> int:
        return crawl(urls)

    handle = pub.start(urls=["https://a.example", "https://b.example"])
    assert handle.result(timeout=20) == 2
    tree = _tree(handle.run_id)
    span = next(s for s in tree.spans.values() if s.name == "crawl")
    assert [p["label"] for p in tree.publishes] == ["page", "page"]
    assert tree.publishes[1]["value"] == {"url": "https://b.example", "n": 1}
    html = span_html(tree, span)
    assert "<h4>published</h4>" in html and "https://b.example" in html
    bars = timeline_rows(tree)
    points: dict[str, Any] = publish_points(tree, bars)
    y = bars["y"][bars["span_id"].index(span.span_id)]
    assert points["y"] == [y, y] and points["label"] == ["page", "page"]
    assert points["x"][0] <= points["x"][1] and "b.example" in points["value"][1]
    assert progress_note(span.progress or {}) == (
        '<span class="aiflow-progress-note"><b>2/2</b> fetched https://b.example</span>'
    )
