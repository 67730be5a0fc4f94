"""compare() / diff_outputs() of a run and its rerun, and what a rerun did not spend: an
LLM workflow against the local OpenAI-compatible server (real openai SDK, request log)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

import aiflow_nb as af
from aiflow_nb.llm import FakeLLMServer, OpenAI
from aiflow_nb.trace import RunTotals

from support.llm import fake_llm, served


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with fake_llm() as s:
        yield s


def _totals(handle: af.RunHandle) -> RunTotals:
    totals = RunTotals()
    for e in handle.events(follow=False):
        totals.apply(e)
    return totals


def _llm_workflow(
    server: FakeLLMServer, suffix: str
) -> tuple[af.Workflow[..., str], dict[str, int]]:
    client = OpenAI(base_url=server.base_url, api_key="unused", provider_name="fake")
    ran = {"outline": 0, "polish": 0}

    def ask(prompt: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], max_tokens=12
        )
        return str(reply.choices[0].message.content)

    @af.component
    def outline(topic: str) -> str:
        ran["outline"] += 1
        return ask(f"outline {topic}") + ask(f"title {topic}")

    @af.component
    def polish(text: str) -> str:
        ran["polish"] += 1
        return ask(f"polish {text}")

    @af.workflow(name=f"write_{suffix}")
    def write(topic: str) -> str:
        return polish(outline(topic))

    return write, ran


def test_rerun_of_a_named_llm_step_requests_only_it_and_reports_what_it_saved(
    server: FakeLLMServer,
) -> None:
    write, ran = _llm_workflow(server, "named")
    first = write.start(topic="otters")
    first.result(timeout=30)
    assert len(served(server)) == 3
    spent = _totals(first)
    assert spent.tokens > 0 and spent.cost > 0

    second = af.rerun(first, steps=["polish"])
    second.result(timeout=30)
    assert len(served(server)) == 4  # only polish's call was requested again
    assert ran == {"outline": 1, "polish": 2}

    totals = _totals(second)
    saved = totals.savings()
    # outline replayed with its two LLM calls; polish and its call executed
    assert saved["steps_replayed"] == 3 and saved["llm_replayed"] == 2
    assert saved["steps_executed"] == 2 and saved["llm_executed"] == 1
    spans = first.spans()
    outline_id = next(s.span_id for s in spans if s.name == "outline")
    outline_calls = [s for s in spans if s.parent_id == outline_id]
    assert len(outline_calls) == 2
    want_tokens = sum(
        s.attributes["gen_ai.usage.input_tokens"] + s.attributes["gen_ai.usage.output_tokens"]
        for s in outline_calls
    )
    assert saved["tokens_saved"] == want_tokens
    assert saved["cost_saved"] == pytest.approx(
        sum(s.attributes["aiflow.cost_usd"] for s in outline_calls), abs=1e-6
    )
    assert totals.tokens == spent.tokens - want_tokens  # a replayed span is not spent

    cmp = af.compare(first, second).set_index("name")
    assert bool(cmp.loc["outline", "replayed_b"]) and not bool(cmp.loc["polish", "replayed_b"])
    assert pd.isna(cmp.loc["outline", "tokens_b"])  # no usage of its own
    chats = cmp[cmp.step.str.startswith("write_named/polish#0/")]
    assert len(chats) == 1 and chats.iloc[0].tokens_b > 0  # polish's call spent again
    assert not bool(cmp.loc["outline", "output_changed"])


def test_compare_aligns_steps_and_diff_outputs_names_the_choices() -> None:
    @af.component
    def part(i: int, scale: int) -> dict[str, int]:
        return {"i": i, "value": i * scale}

    @af.workflow
    def parts(scale: int) -> list[dict[str, int]]:
        return [part(i, scale) for i in range(2)]

    first = parts.start(scale=1)
    first.result(timeout=20)
    second = af.rerun(first, inputs={"scale": 1})  # same inputs: all replayed
    second.result(timeout=20)
    cmp = af.compare(first, second)
    assert cmp.step.tolist() == ["parts", "parts/part#0", "parts/part#1"]
    assert cmp.replayed_b.tolist() == [False, True, True]
    assert not cmp.output_changed.any()

    third = af.rerun(first, inputs={"scale": 3})
    third.result(timeout=20)
    cmp = af.compare(first, third).set_index("step")
    assert cmp.output_changed.to_dict() == {
        "parts": True,
        "parts/part#0": False,  # 0 * scale: equal output, though it executed
        "parts/part#1": True,
    }
    diff = af.diff_outputs(first, third, "parts/part#1")
    assert diff.splitlines()[0] == f"--- {first.run_id}:parts/part#1"
    assert '-  "value": 1' in diff and '+  "value": 3' in diff
    with pytest.raises(ValueError, match=r"component 'part' has 2 steps; name one: parts/part#0"):
        af.diff_outputs(first, third, "part")
    with pytest.raises(ValueError, match=r"no step 'nope' in either run; components: part, parts"):
        af.diff_outputs(first, third, "nope")
    with pytest.raises(af.RunNotFound):
        af.compare(first, "nosuchrun")
