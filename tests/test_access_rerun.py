"""Rerun: a new run of a finished run that replays what is still valid from the source's
journal and executes only what changed (real Redis, the in-process worker)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import aiflow_nb as af
from aiflow_nb import component, keys, workflow
from aiflow_nb.store import sync_redis

from support.api import served_client
from support.helpers import wait_for


def _chain(ran: Counter[str], fail_c: bool = False) -> tuple[Any, ...]:
    """A 3-step chain a -> b -> c counting each body's executions in ``ran``."""

    @component
    def a(x: int) -> int:
        ran["a"] += 1
        return x + 1

    @component
    def b(y: int) -> int:
        ran["b"] += 1
        return y * 10

    @component
    def c(z: int) -> str:
        ran["c"] += 1
        if fail_c:
            raise RuntimeError("c is broken")
        return f"c:{z}"

    return a, b, c


def _chain_workflow(
    name: str, ran: Counter[str], fail_c: bool = False
) -> tuple[af.Workflow[..., str], dict[str, Any]]:
    """A workflow ``name`` over ``_chain``'s steps, and those steps by name: the
    workflow calls whatever the dict holds, so a test can redefine one (a cell edited)."""
    parts = dict(zip("abc", _chain(ran, fail_c), strict=True))

    @workflow(name=name)
    def chain(x: int) -> str:
        return str(parts["c"](parts["b"](parts["a"](x))))

    return chain, parts


def _replayed(handle: af.RunHandle) -> dict[str, str | None]:
    return {s.name: s.replayed_from for s in handle.spans() if s.replayed}


def _started_why(handle: af.RunHandle) -> dict[str, str | None]:
    return {e.name or "": e.data.get("rerun") for e in handle.events() if e.type == "span.started"}


def test_rerun_named_step_executes_only_it_and_replays_the_rest() -> None:
    ran: Counter[str] = Counter()
    wf, parts = _chain_workflow("chain3", ran)
    first = wf.start(x=1)
    assert first.result(timeout=20) == "c:20"
    assert ran == Counter(a=1, b=1, c=1)

    second = af.rerun(first, steps=["b"])
    assert second.result(timeout=20) == "c:20"
    assert ran == Counter(a=1, b=2, c=1)  # b is deterministic: c gets equal input, replays
    assert _replayed(second) == {"a": first.run_id, "c": first.run_id}
    assert _started_why(second) == {"chain3": None, "b": "named"}
    rec = second.record()
    assert rec["forked_from"] == first.run_id and rec["rerun_steps"] == ["b"]
    queued = next(e for e in second.events() if e.type == "run.queued")
    assert queued.data["forked_from"] == first.run_id
    frame = second.to_pandas()
    assert set(frame[frame.replayed].replayed_from) == {first.run_id}

    # the rerun is self-contained: its own journal holds every step, seeded ones too
    journal = sync_redis().hkeys(keys.run_journal(second.run_id))
    assert {k.decode() for k in journal} == {"chain3/a#0", "chain3/b#0", "chain3/c#0"}


def test_rerun_with_new_inputs_executes_all() -> None:
    ran: Counter[str] = Counter()
    wf, parts = _chain_workflow("chain_inputs", ran)
    first = wf.start(x=1)
    first.result(timeout=20)
    second = first.rerun(inputs={"x": 2})
    assert second.result(timeout=20) == "c:30"
    assert ran == Counter(a=2, b=2, c=2)
    assert _replayed(second) == {}
    assert _started_why(second) == {
        "chain_inputs": None,
        "a": "arguments changed",
        "b": "arguments changed",
        "c": "arguments changed",
    }
    logs = [e for e in second.events() if e.type == "log"]
    assert not logs  # in a rerun other arguments are expected, not a divergence
    assert second.record()["inputs"] == {"x": 2}


def test_rerun_after_redefining_a_component_executes_it_and_what_it_feeds() -> None:
    ran: Counter[str] = Counter()
    wf, parts = _chain_workflow("chain_code", ran)
    first = wf.start(x=1)
    assert first.result(timeout=20) == "c:20"

    @component  # b's cell edited: same name, other source
    def b(y: int) -> int:
        ran["b"] += 1
        return y * 100

    parts["b"] = b

    second = af.rerun(first.run_id)
    assert second.result(timeout=20) == "c:200"
    assert ran == Counter(a=1, b=2, c=2)
    assert _replayed(second) == {"a": first.run_id}
    assert _started_why(second) == {
        "chain_code": None,
        "b": "code changed",
        "c": "arguments changed",
    }

    cmp = af.compare(first, second).set_index("name")
    assert (
        list(af.compare(first, second).columns)
        == (
            "step name status_a status_b replayed_b output_changed duration_a duration_b "
            "tokens_a tokens_b cost_a cost_b"
        ).split()
    )
    assert cmp.output_changed.to_dict() == {"chain_code": True, "a": False, "b": True, "c": True}
    assert cmp.replayed_b.to_dict() == {"chain_code": False, "a": True, "b": False, "c": False}
    diff = af.diff_outputs(first, second, "b")
    assert "-20" in diff and "+200" in diff
    assert af.diff_outputs(first, second, "chain_code/a#0") == ""


def test_rerun_of_a_failed_run_after_the_fix_replays_what_succeeded() -> None:
    ran: Counter[str] = Counter()
    wf, parts = _chain_workflow("chain_fix", ran, fail_c=True)
    first = wf.start(x=1)
    with pytest.raises(af.RunFailed):
        first.result(timeout=20)

    @component  # the fix
    def c(z: int) -> str:
        ran["c"] += 1
        return f"fixed:{z}"

    parts["c"] = c

    second = af.rerun(first)
    assert second.result(timeout=20) == "fixed:20"
    assert ran == Counter(a=1, b=1, c=2)
    assert _replayed(second) == {"a": first.run_id, "b": first.run_id}
    cmp = af.compare(first, second).set_index("name")
    assert cmp.loc["c", "status_a"] == "failed" and cmp.loc["c", "status_b"] == "completed"


def test_rerun_of_a_cancelled_run_replays_and_its_waits_ask_again() -> None:
    ran: Counter[str] = Counter()
    a, b, c = _chain(ran)

    @workflow
    def chain_wait(x: int) -> str:
        y = a(x)
        ok = af.wait_for_input("go", prompt="go on?")
        return c(b(y + int(ok)))

    first = chain_wait.start(x=1)
    wait_for(lambda: first.status == "waiting", what="the wait")
    first.cancel()
    assert first.wait(timeout=10) == "cancelled"

    second = af.rerun(first)
    wait_for(lambda: second.status == "waiting", what="the rerun's wait")
    assert ran["a"] == 1  # replayed
    second.respond("go", 1)
    assert second.result(timeout=20) == "c:30"
    assert ran == Counter(a=1, b=1, c=1)
    assert _replayed(second) == {"a": first.run_id}


def test_resume_of_a_failed_rerun_replays_its_own_journal() -> None:
    ran: Counter[str] = Counter()
    a, b, c = _chain(ran)
    state = {"broken": False}

    @component
    def d(s: str) -> str:
        ran["d"] += 1
        if state["broken"]:
            raise RuntimeError("d is down")
        return s + "!"

    @workflow
    def chain_resume(x: int) -> str:
        return d(c(b(a(x))))

    first = chain_resume.start(x=1)
    assert first.result(timeout=20) == "c:20!"
    state["broken"] = True
    second = af.rerun(first, steps=["c", "d"])
    with pytest.raises(af.RunFailed):
        second.result(timeout=20)
    assert ran == Counter(a=1, b=1, c=2, d=2)

    state["broken"] = False
    assert af.resume(second.run_id).result(timeout=20) == "c:20!"
    assert ran == Counter(a=1, b=1, c=2, d=3)  # c: from the rerun's own journal
    events = list(second.events())
    at = next(i for i, e in enumerate(events) if e.type == "run.resumed")
    again = {e.name: e.data.get("replayed_from") for e in events[at:] if e.type == "span.replayed"}
    # the second attempt replays its own journal: seeded steps still say where from
    assert again == {"a": first.run_id, "b": first.run_id, "c": None}
    assert _started_why(second)["d"] == "named"  # still named in the second attempt


def test_rerun_refuses_unknown_unfinished_and_bad_requests() -> None:
    ran: Counter[str] = Counter()
    wf, _ = _chain_workflow("chain_bad", ran)
    with pytest.raises(af.RunNotFound):
        af.rerun("nosuchrun")
    first = wf.start(x=1)
    first.result(timeout=20)
    with pytest.raises(af.InvalidInputs, match=r"no step 'nope'.*components: a, b, c"):
        af.rerun(first, steps=["nope"])
    with pytest.raises(af.InvalidInputs, match="chain_bad"):
        af.rerun(first, inputs={"unknown": 1})

    @workflow
    def waits_forever() -> int:
        return int(af.wait_for_input("never"))

    pending = waits_forever.start()
    wait_for(lambda: pending.status == "waiting", what="the wait")
    with pytest.raises(af.RunStateError, match="is waiting; a rerun needs a finished run"):
        af.rerun(pending)
    pending.cancel()


def test_the_api_run_document_shows_forked_from() -> None:
    ran: Counter[str] = Counter()
    wf, parts = _chain_workflow("chain_api", ran)
    first = wf.start(x=1)
    first.result(timeout=20)
    second = af.rerun(first)
    second.result(timeout=20)
    with served_client() as http:  # a real server
        assert http.get(f"/runs/{second.run_id}").json()["forked_from"] == first.run_id
        assert http.get(f"/runs/{first.run_id}").json()["forked_from"] is None


def test_a_rerun_renders_replayed_from_and_what_it_saved_as_text() -> None:
    from aiflow_nb.notebook.render import render_text
    from aiflow_nb.notebook.state import RunState
    from aiflow_nb.trace.tree import SpanTree

    ran: Counter[str] = Counter()
    wf, parts = _chain_workflow("chain_text", ran)
    first = wf.start(x=1)
    first.result(timeout=20)
    second = af.rerun(first, steps=["c"])
    second.result(timeout=20)
    events = list(second.events(follow=False))
    text = render_text(RunState(second.run_id).apply_all(events))
    assert f"[replayed from {first.run_id}]" in text
    assert "replayed 2 steps, executed 1" in text
    rows = {r.name: r for r in SpanTree.from_events(events).rows()}
    assert rows["b"].replayed_from == first.run_id and rows["c"].replayed_from is None
    assert rows["b"].markers == f"replayed from {first.run_id}"


NOTEBOOK_CELL = """
from aiflow_nb import component, workflow

@component
def nb_first(x: int) -> int:
    return x + 1

@component
def nb_second(y: int) -> int:
    return y * {factor}

@workflow
def nb_chain(x: int) -> int:
    return nb_second(nb_first(x))
"""


def test_rerun_of_notebook_code_uses_the_latest_bundle_and_replays_unchanged_cells() -> None:
    from aiflow_nb.ops.code import register_bundle, register_source
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.ops.submit import submit

    def bundle(factor: int) -> str:
        source = register_source(NOTEBOOK_CELL.format(factor=factor), f"cell-{factor}")
        return register_bundle("nb_chain", [source])

    v1 = bundle(10)
    first = af.attach(submit("nb_chain", {"x": 1}, code=v1))
    ensure_local_worker(workflow="nb_chain", code=True)
    assert first.result(timeout=30) == 20
    v2 = bundle(100)  # the cell edited: a new bundle is the latest for the name
    second = af.rerun(first)
    assert second.result(timeout=30) == 200
    assert second.record()["code"] == v2 != v1
    assert _replayed(second) == {"nb_first": first.run_id}
    assert _started_why(second)["nb_second"] == "code changed"
    with pytest.raises(af.InvalidInputs, match="nb_chain.*unexpected keyword argument 'y'"):
        af.rerun(first, inputs={"y": 2})  # checked against the bundle's interface


def test_rerun_of_a_rerun_replays_from_the_rerun_and_secrets_must_be_given_again() -> None:
    ran: Counter[str] = Counter()
    wf, _ = _chain_workflow("chain_twice", ran)
    first = wf.start(x=1)
    first.result(timeout=20)
    second = first.rerun(steps=["a"])
    second.result(timeout=20)
    third = second.rerun()
    assert third.result(timeout=20) == "c:20"
    assert ran == Counter(a=2, b=1, c=1)
    assert _replayed(third) == dict.fromkeys("abc", second.run_id)
    assert third.record()["forked_from"] == second.run_id

    @workflow(secret_args=["token"])
    def with_secret(token: str) -> int:
        return len(token)

    secret = with_secret.start(token="s3cret-value")
    assert secret.result(timeout=20) == 12
    with pytest.raises(af.RunStateError, match=r"secret inputs \['token'\].*give them again"):
        af.rerun(secret)
    assert af.rerun(secret, inputs={"token": "other"}).result(timeout=20) == 5


def test_a_named_step_executes_even_when_its_cache_holds_the_result() -> None:
    ran: Counter[str] = Counter()

    @component(cache=3600)
    def cached_step(x: int) -> int:
        ran["cached_step"] += 1
        return x * 2

    @workflow
    def with_cache(x: int) -> int:
        return cached_step(x)

    first = with_cache.start(x=4)
    assert first.result(timeout=20) == 8
    assert with_cache.start(x=4).result(timeout=20) == 8  # another run: a cache hit
    assert ran["cached_step"] == 1
    second = af.rerun(first, steps=["cached_step"])
    assert second.result(timeout=20) == 8
    assert ran["cached_step"] == 2  # named: executed, not answered by the cache
    assert not any(e.type == "span.cached" for e in second.events())
