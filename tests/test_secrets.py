"""Secrets never written: a workflow's secret input, a component's credential-named
arguments and their literal values anywhere else are masked before any event is
written, so no reader shows them; the worker still gets the real values, and the
record drops them when the run ends. Real worker (in process, and real processes
killed with SIGKILL), real Redis, real uvicorn, real OTLP receiver, real Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from aiflow_nb import component, keys, progress, workflow
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.errors import RunFailed, RunStateError
from aiflow_nb.export.otlp import OtlpExporter
from aiflow_nb.llm import AsyncOpenAI
from aiflow_nb.notebook.display import snapshot_html, snapshot_text
from aiflow_nb.ops.submit import resume, submit
from aiflow_nb.redaction import MASK
from aiflow_nb.store import sync_redis

from support import PYTHONPATH
from support.api import KEY, client, serve
from support.browser import chromium, screenshot, viewer_server
from support.llm import fake_llm
from support.ops import fleet, journal_keys, record, running_on, wait_for
from support.otlp_receiver import Receiver
from support.secret_flows import (
    PASSWORD,
    TOKEN,
    digest,
    secret_big,
    secret_fail,
    secret_flow,
    seen,
)
from support.trace import open_gate

SECRETS = (TOKEN.encode(), PASSWORD.encode())
CLI = "from aiflow_nb.cli import main; main()"


def _leaks(blob: bytes | str) -> list[bytes]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [s for s in SECRETS if s in data]


def _stream_bytes(run_id: str) -> bytes:
    """Every entry of the run's stream, raw (ids, fields and values)."""
    entries = sync_redis().xrange(keys.run_events(run_id))
    return b"\n".join(eid + b"".join(k + v for k, v in f.items()) for eid, f in entries)


def _cli(*args: str) -> str:
    """``aiflow ARGS`` in a real process (this test's Redis and namespace)."""
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "AIFLOW_LOCAL_WORKER": "0"}
    done = subprocess.run(
        [sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_secrets_reach_the_worker_and_no_reader_shows_them() -> None:
    handle = secret_flow.start(user="bob", token=TOKEN)
    out = handle.result(timeout=30)
    run_id = handle.run_id

    # the components received the real values
    assert seen(run_id) == {
        "login.api_key": digest(TOKEN),
        "login.password": digest(PASSWORD),
        "check.api_key": digest(TOKEN),
    }
    # ... and no event holds them: the whole stream, raw
    raw = _stream_bytes(run_id)
    assert _leaks(raw) == [] and MASK.encode() in raw
    events = list(handle.events(follow=False))
    started = {e.name: e.data for e in events if e.type == "span.started"}
    assert started["secret_flow"]["inputs"] == {"user": "bob", "token": MASK}
    assert started["login"]["inputs"] == {
        "api_key": MASK,
        "password": MASK,
        "note": f"bob uses {MASK}",
    }
    failed = next(e for e in events if e.type == "span.failed")
    assert f"bad credentials: {MASK} / {MASK}" in failed.data["error"]["traceback"]
    log = next(e for e in events if e.type == "log")
    assert log.data["message"] == f"token={MASK} pw={MASK}"
    assert out == {
        "session": f"session for {MASK} / {MASK} (bob uses {MASK})",
        "echo": f"my key is {MASK} and my password {MASK}",
        "token": MASK,
        "check": "ok",
    }

    # the record dropped the secret inputs when the run ended (raw HGET)
    r = sync_redis()
    assert _leaks(r.hget(keys.run(run_id), "inputs")) == []
    assert _leaks(b"".join(r.hgetall(keys.run(run_id)).values())) == []
    assert record(run_id)["secrets_dropped"] == "1"
    assert handle.record()["inputs"] == {"user": "bob", "token": MASK}

    # readers: to_pandas, the widget's HTML and text, OTLP, CLI, REST
    spans = handle.to_pandas()
    assert _leaks(spans.to_json(date_format="iso", default_handler=str)) == []
    assert set(spans["name"]) >= {"secret_flow", "login", "echo", "explode", "check"}
    assert _leaks(snapshot_html(handle)) == [] and _leaks(snapshot_text(handle)) == []
    with Receiver() as rx:
        assert OtlpExporter(rx.endpoint).export_run(run_id) == 5
    assert _leaks(rx.requests[0].SerializeToString()) == []
    assert _leaks(_cli("runs")) == [] and run_id in _cli("runs")
    attached = _cli("attach", run_id)
    assert _leaks(attached) == [] and "completed" in attached
    with serve(api_keys=(KEY,)) as server, client(server) as http:
        for path in (f"/runs/{run_id}", f"/runs/{run_id}/events", "/runs"):
            answer = http.get(path)
            assert answer.status_code == 200 and _leaks(answer.content) == [], path


def test_a_credential_named_input_is_masked_without_secret_args_and_its_run_ends_for_good() -> None:
    handle = secret_fail.start(api_key=TOKEN)
    with pytest.raises(RunFailed) as failed:
        handle.result(timeout=30)
    assert _leaks(str(failed.value)) == [] and f"auth failed for {MASK}" in str(failed.value)
    r = sync_redis()
    assert _leaks(_stream_bytes(handle.run_id)) == []
    assert _leaks(b"".join(r.hgetall(keys.run(handle.run_id)).values())) == []
    queued = next(e for e in handle.events(follow=False) if e.type == "run.queued")
    assert queued.data["inputs"] == {"api_key": MASK}
    # its secret is gone: resuming it would run it without one, so it is refused (clearly)
    with pytest.raises(RunStateError, match="secret inputs"):
        resume(handle.run_id)
    assert record(handle.run_id)["status"] == "failed"


@pytest.mark.browser
def test_the_dashboards_span_detail_shows_no_secret() -> None:
    handle = secret_flow.start(user="eve", token=TOKEN)
    handle.result(timeout=30)
    with viewer_server() as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}?run={handle.run_id}")
        rows = page.locator(".tabulator-row")
        expect(rows).to_have_count(5, timeout=45_000)
        detail = page.locator(".aiflow-detail")
        for name, shown in [
            ("login", "note"),
            ("echo", "my key is ***"),
            ("explode", "bad credentials: *** / ***"),
            ("secret_flow", "eve"),
        ]:
            rows.filter(has_text=name).first.click()
            expect(detail).to_contain_text(shown)
            assert _leaks(detail.inner_html()) == [], name
        screenshot(page, "viewer-secret-detail")
        assert _leaks(page.content()) == []


def test_a_run_resumed_after_its_worker_died_still_gets_the_real_secret(
    tmp_path: Path,
) -> None:
    gate = f"secret{time.time_ns()}"
    with fleet(tmp_path) as start:
        workers = [start("--app", "support.secret_flows") for _ in range(2)]
        for w in workers:
            w.ready()
        run_id = submit(
            "secret_flow", {"user": "kim", "token": TOKEN, "gate": gate}, secret_args=["token"]
        )
        wait_for(lambda: len(journal_keys(run_id)) >= 2, 20, "login and echo journaled")
        holder = running_on(run_id)
        assert record(run_id)["inputs"].count(TOKEN) == 1  # real while the run may need it
        next(w for w in workers if w.id == holder).kill()
        wait_for(lambda: record(run_id).get("attempt") == "2", 20, "the run resumed")
        open_gate(gate)
        out = RunHandle(run_id).result(timeout=30)
    assert out["check"] == "ok" and out["token"] == MASK
    assert seen(run_id)["check.api_key"] == digest(TOKEN)  # after the resume: the real value
    assert _leaks(_stream_bytes(run_id)) == []
    assert _leaks(b"".join(sync_redis().hgetall(keys.run(run_id)).values())) == []


def test_an_llm_clients_api_key_given_in_code_is_masked_too() -> None:
    key = "sk-given-in-code-0123456789abcdef"
    with fake_llm() as server:
        llm = AsyncOpenAI(base_url=server.base_url, api_key=key, provider_name="fake")

        @workflow
        async def ask_with_key(question: str) -> str:
            reply = await llm.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
            )
            progress(1, 1, f"asked with {llm.api_key}")  # e.g. a debugging line
            return f"{reply.choices[0].message.content} (key {llm.api_key})"

        handle = ask_with_key.start(question="what is durable execution?")
        out = handle.result(timeout=30)
    assert out.endswith(f"(key {MASK})")
    raw = _stream_bytes(handle.run_id)
    assert key.encode() not in raw and b"gpt-4o-mini" in raw


@component
async def stream_back(text: str) -> AsyncIterator[str]:
    """Streams ``text`` in chunks of 5 characters, as an LLM streams tokens."""
    for i in range(0, len(text), 5):
        yield text[i : i + 5]


@workflow(secret_args=["token"])
async def streamed_secret(token: str) -> str:
    text: str = await stream_back(f"my key is {token}; bye s")  # type: ignore[misc]
    return text


def test_a_secret_split_across_streamed_chunks_is_masked_in_the_deltas() -> None:
    handle = streamed_secret.start(token=TOKEN)
    assert handle.result(timeout=30) == f"my key is {MASK}; bye s"
    raw = _stream_bytes(handle.run_id)
    for n in (4, 5, 6):  # no chunk of it either: each delta is 5 characters
        assert all(TOKEN[i : i + n].encode() not in raw for i in range(0, len(TOKEN) - n))
    deltas = [e for e in handle.events(follow=False) if e.type == "output.delta"]
    # what readers join is the masked text, whole (the held-back end is written at the end)
    assert "".join(e.data["text"] for e in deltas) == f"my key is {MASK}; bye s"
    assert all(e.name == "stream_back" and e.span_id == deltas[0].span_id for e in deltas)


def _running_without_worker(inputs: dict[str, str]) -> str:
    """A run recorded as running, with no lease: what the monitor finds after a crash."""
    run_id = submit("secret_flow", inputs, secret_args=["token"])
    sync_redis().hset(keys.run(run_id), mapping={"status": "running", "restarts": 1})
    return run_id


def test_runs_the_monitor_or_a_broken_executor_ends_drop_their_secrets_too() -> None:
    from aiflow_nb.ops.recovery import fail_run, recover
    from aiflow_nb.store import async_redis, run_in_new_loop

    crashed = _running_without_worker({"user": "ann", "token": TOKEN})
    broken = _running_without_worker({"user": "ann", "token": TOKEN})

    async def end_both() -> None:
        client = async_redis()
        assert (await recover(client, crashed, max_restarts=1)).outcome == "crashed"
        assert await fail_run(client, broken, RuntimeError(f"executor bug near {TOKEN}"))

    run_in_new_loop(end_both())
    for run_id in (crashed, broken):
        rec = record(run_id)
        assert rec["status"] == "failed" and rec["secrets_dropped"] == "1"
        assert _leaks(b"".join(sync_redis().hgetall(keys.run(run_id)).values())) == []
        assert _leaks(_stream_bytes(run_id)) == []
    assert f"executor bug near {MASK}" in record(broken)["error"]


def test_no_part_of_a_secret_is_left_where_events_cut_or_preview_a_value() -> None:
    handle = secret_big.start(token=TOKEN)
    out = handle.result(timeout=30)
    assert out == "x" * 486 + MASK + "z" * 20_000  # the record's output is masked
    part = TOKEN[:10].encode()  # what a cut through the secret would leave
    assert part not in _stream_bytes(handle.run_id)
    events = list(handle.events(follow=False))
    completed = next(e for e in events if e.type == "span.completed" and e.name == "shout")
    assert "at" not in completed.data["output_ref"]  # not a reference to the real journal
    failed = [e for e in events if e.type == "span.failed"]
    assert len(failed) == 2 and all(e.data["error"].get("truncated") for e in failed)
    assert part not in handle.to_pandas().to_json(date_format="iso", default_handler=str).encode()
    assert part not in snapshot_html(handle).encode()
    with serve(api_keys=(KEY,)) as server, client(server) as http:
        for path in (f"/runs/{handle.run_id}", f"/runs/{handle.run_id}/events"):
            assert part not in http.get(path).content, path
    # the journal keeps the step's result as returned: a replay must return it
    assert TOKEN.encode() in sync_redis().hget(
        keys.run_journal(handle.run_id), "secret_big/shout#0"
    )


def test_large_inputs_read_back_while_the_run_holds_them_real_are_masked() -> None:
    gate = f"big-inputs{time.time_ns()}"
    user = "u" * 20_000 + f" (token {TOKEN})"  # over the inline size: events refer to it
    handle = secret_flow.start(user=user, token=TOKEN, gate=gate)
    wait_for(lambda: len(journal_keys(handle.run_id)) >= 2, 20, "login and echo journaled")
    assert TOKEN in record(handle.run_id)["inputs"]  # real, for the worker, while it runs
    queued = next(e for e in handle.events(follow=False) if e.type == "run.queued")
    assert queued.data["inputs_ref"]["at"] == "record"
    root = next(s for s in handle.spans() if s.name == "secret_flow")  # resolves the ref
    assert root.inputs == {"user": "u" * 20_000 + f" (token {MASK})", "token": MASK, "gate": gate}
    with serve(api_keys=(KEY,)) as server, client(server) as http:  # the live feed
        path = f"/runs/{handle.run_id}/events"
        with http.stream("GET", path, params={"format": "ndjson"}) as feed:
            lines = []
            for line in feed.iter_lines():
                lines.append(line)
                if '"log"' in line:  # written after the root's span.started and login's
                    break
        assert any('"inputs"' in line and "u" * 100 in line for line in lines)
        assert _leaks("\n".join(lines)) == []
    open_gate(gate)
    handle.result(timeout=30)
