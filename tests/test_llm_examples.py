"""The two demo workflows on the local LLM server and the fixture site, and the commands
that run them: ``aiflow demo`` and ``aiflow fake-llm``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

import aiflow_nb as af
from aiflow_nb import limits
from aiflow_nb.api.server import free_port
from aiflow_nb.examples.content_agent import content_agent
from aiflow_nb.examples.ingestion import onboard_site
from aiflow_nb.examples.llm import FAKE_URL_ENV, use_fake_llm
from aiflow_nb.examples.site import serve_site
from aiflow_nb.llm import FakeLLMServer

from support.llm import events_of, fake_llm, llm_spans
from support.processes import wait_serving

AIFLOW = str(Path(sys.executable).parent / "aiflow")


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with fake_llm(latency=0.02, tokens_per_s=400) as server:
        monkeypatch.setenv(FAKE_URL_ENV, server.base_url)
        use_fake_llm(server.base_url)
        yield server


def test_ingestion_picks_pages_then_summarises_each_under_the_shared_rate_limit(
    llm: FakeLLMServer,
) -> None:
    limits.set("fake-llm:gpt-4o-mini", rpm=1200)  # 20 calls/s, a burst of 20
    with serve_site(pages=40) as site:
        t0 = time.monotonic()
        handle = onboard_site.start(site_url=site.url, max_pages=40)
        result = handle.result(timeout=60)
        wall = time.monotonic() - t0
    pages = result["pages"]
    assert result["links"] == 43 and 20 < pages <= 40
    assert all(u.startswith(site.url) and s for u, s in result["summaries"].items())
    spans = llm_spans(handle)
    assert len(spans) == pages + 1 == len(llm.llm.requests)  # one pick + one per page
    assert wall >= (pages + 1 - 20) / 20 * 0.9  # queued by the limit
    assert any(s.attributes.get("aiflow.llm.rate_limit_wait_s", 0) > 0.2 for s in spans)
    statuses: dict[str, list[str]] = {}
    for e in events_of(handle, "publish"):
        statuses.setdefault(e.data["value"]["url"], []).append(e.data["value"]["status"])
    assert len(statuses) == pages
    assert all(s == ["scraping", "summarising", "done"] for s in statuses.values())
    last = events_of(handle, "progress")[-1].data
    assert last["done"] == last["total"] == pages


def test_content_agent_reattached_reader_sees_every_status_and_token(llm: FakeLLMServer) -> None:
    handle = content_agent.start(topic="durable workflows", sections=3)
    for event in handle.events():  # a person watches until the first token, then leaves
        if event.type == "output.delta":
            break
    post = af.attach(handle.run_id).result(timeout=60)
    again = list(af.attach(handle.run_id).events())  # re-attached: the whole history
    assert again[-1].type == "run.completed"
    statuses = [e.data["value"] for e in again if e.type == "publish"]
    assert statuses[:2] == ["researching 'durable workflows'", "outlining"]
    assert len([s for s in statuses if s.startswith("writing")]) == 3 and statuses[-1] == "done"
    sections = [s for s in handle.spans() if s.name == "write_section"]
    streamed = {s.parent_id: s for s in llm_spans(handle) if s.attributes.get("aiflow.llm.stream")}
    for section in sections:
        deltas = "".join(
            e.data["text"]
            for e in again
            if e.type == "output.delta" and e.span_id == streamed[section.span_id].span_id
        )
        assert deltas and deltas == section.output and deltas in post
    second = content_agent.start(topic="durable workflows", sections=3)
    second.result(timeout=60)
    assert [s.cached for s in second.spans() if s.name == "research"] == [True]


def test_aiflow_demo_runs_the_content_agent_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [AIFLOW, "demo", "--sections", "2"], env=env, text=True, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    run_id = out.split("\nrun ", 1)[1].split()[0]
    assert f"aiflow attach {run_id}" in out and "aiflow viewer" in out
    assert "run.completed" in out and "output.delta" not in out  # tokens print inline
    assert af.attach(run_id).status == "completed"
    assert "LLM cost: $" in out


def test_aiflow_demo_approve_parks_at_the_outline_and_without_a_terminal_approves() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [AIFLOW, "demo", "--sections", "2", "--approve"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Write this outline?" in out and "approving automatically" in out
    run_id = out.split("\nrun ", 1)[1].split()[0]
    handle = af.attach(run_id)
    assert handle.status == "completed" and str(handle.result()).startswith("# ")
    types = [e.type for e in handle.events(follow=False)]
    assert types.index("run.waiting") < types.index("input.received") < types.index("run.resumed")


def test_a_rejected_outline_ends_the_demo_without_writing() -> None:
    import io

    from aiflow_nb.examples.llm_demo import run_content_demo

    asked: list[str] = []

    def reject(prompt: str) -> bool:
        asked.append(prompt)
        return False

    post = run_content_demo("durable workflows", 2, out=io.StringIO(), approve=True, ask=reject)
    assert post == "outline rejected: nothing written"
    assert len(asked) == 1 and asked[0].startswith("Write this outline?\n  - ")


def test_aiflow_fake_llm_serves_the_sdk_with_its_own_rpm_and_runtime_knobs() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [AIFLOW, "fake-llm", "--port", str(port), "--rpm", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    try:
        wait_serving(proc, f"{base}/_aiflow/knobs")
        ask = [{"role": "user", "content": "hi"}]
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o-mini", messages=ask)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=ask)
        assert 50 < int(info.value.response.headers["retry-after"]) <= 60
        httpx.post(f"{base}/_aiflow/knobs", json={"rpm": None, "outage": 503})
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=ask)
        log = httpx.get(f"{base}/_aiflow/requests").json()
        assert [r["status"] for r in log] == [200, 200, 429, 503]
    finally:
        client.close()
        proc.terminate()
        proc.communicate(timeout=10)  # reaps it and closes its pipes


def test_titles_are_read_from_lists_and_from_prose() -> None:
    from aiflow_nb.examples.content_agent import titles_from

    assert titles_from("1. Alpha beta\n2) gamma\n- delta\n\n", 3) == [
        "Alpha beta",
        "Gamma",
        "Delta",
    ]
    assert titles_from("- Facts first. Then a second point! And more", 2) == [
        "Facts first",
        "Then a second point!",
    ]
