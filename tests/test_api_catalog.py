"""The API never executes notebook code: a ``%%workflow`` cell's bundle carries the input
and output JSON Schema its kernel computed, and a real ``aiflow api`` process (another
process, no ``AIFLOW_SECRET``) lists, describes and validates it from that alone. A bad
code-index entry hides only its own workflow. Real IPython shell, real servers, real
Redis."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from typing_extensions import TypedDict

from aiflow_nb import keys, workflow
from aiflow_nb.api.server import free_port
from aiflow_nb.ops.code import register_bundle, register_source
from aiflow_nb.serialization import dumps
from aiflow_nb.store import sync_redis

from support import PYTHONPATH
from support.api import KEY, served_client
from support.notebook import run_cell, shell_fixture  # noqa: F401
from support.processes import wait_serving

SIDE_EFFECT = """%%workflow nb_side
import os, pathlib
pathlib.Path(os.environ["AIFLOW_TEST_MARKS"], f"cell-ran-in-{os.getpid()}").touch()

def nb_side(who: str, times: int = 1) -> str:
    '''Repeats a name (its cell leaves a mark wherever it is executed).'''
    return who * times
"""


@pytest.fixture
def api_process(
    namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, int]]:
    """``aiflow api`` in a process of its own, without AIFLOW_SECRET and without --app;
    cells leave their marks in ``tmp_path``."""
    monkeypatch.setenv("AIFLOW_TEST_MARKS", str(tmp_path))
    with _api_process() as found:
        yield found


@contextmanager
def _api_process(secret: str | None = None) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "AIFLOW_API_KEYS": KEY}
    env.pop("AIFLOW_SECRET", None)
    if secret is not None:
        env["AIFLOW_SECRET"] = secret
    env["AIFLOW_LOCAL_WORKER"] = "0"
    code = "import sys; from aiflow_nb.cli import main; sys.argv[0] = 'aiflow'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(proc, f"{url}/healthz", timeout=20)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_api_serves_a_notebook_workflow_without_executing_its_code(
    shell: Any, api_process: tuple[str, int], tmp_path: Path
) -> None:
    url, api_pid = api_process
    assert run_cell(shell, SIDE_EFFECT).error_in_exec is None  # the kernel executes it
    kernel_mark = f"cell-ran-in-{os.getpid()}"
    assert {p.name for p in tmp_path.iterdir()} == {kernel_mark}

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        listed = {w["name"]: w for w in c.get("/workflows").json()["workflows"]}
        assert listed["nb_side"]["source"] == "notebook"
        assert listed["nb_side"]["description"].startswith("Repeats a name")
        doc = c.get("/workflows/nb_side").json()
        assert doc["input_schema"]["required"] == ["who"]
        assert doc["input_schema"]["properties"]["times"] == {
            "default": 1,
            "title": "Times",
            "type": "integer",
        }
        assert doc["output_schema"] == {"type": "string"}
        bad = c.post("/workflows/nb_side/start", json={"who": ["x"], "times": "many"})
        assert bad.status_code == 422
        assert {f["field"] for f in bad.json()["fields"]} == {"who", "times"}
        unknown = c.post("/workflows/nb_side/start", json={"who": "a", "nope": 1})
        assert unknown.status_code == 422 and unknown.json()["fields"][0]["field"] == "nope"
        assert c.post("/workflows/nb_side/start", json={}).status_code == 422
        ok = c.post("/workflows/nb_side/start", json={"who": "ab", "times": "2"})
        assert ok.status_code == 202
        run = c.get(f"/runs/{ok.json()['run_id']}").json()
        assert run["inputs"] == {"who": "ab", "times": 2}  # validated and coerced, as before
        spec = c.get("/openapi.json").json()
        assert "/workflows/nb_side/start" in spec["paths"]
        # the kernel's worker runs it: the API only queued it
        result = c.post("/workflows/nb_side/run", json={"who": "ab", "times": 2}, timeout=30)
        assert result.json()["output"] == "abab"

    marks = {p.name for p in tmp_path.iterdir()}
    assert f"cell-ran-in-{api_pid}" not in marks, "the API process executed the cell"
    assert marks <= {kernel_mark}  # the in-kernel worker runs the bundle in this process


class Line(TypedDict):
    sku: str
    qty: int


TYPED = """
from typing import Annotated, Literal
from pydantic import Field
from typing_extensions import TypedDict
from aiflow_nb import workflow

class Line(TypedDict):
    sku: str
    qty: int

@workflow
def {name}(
    lines: list[Line],
    mode: Literal["fast", "slow"] = "fast",
    limit: Annotated[int, Field(ge=0, le=10)] = 3,
    tags: dict[str, float] | None = None,
    pair: tuple[int, str] | None = None,
    json: str = "",
) -> dict[str, int]:
    return {{}}
"""


@workflow
def api_typed(
    lines: list[Line],
    mode: Literal["fast", "slow"] = "fast",
    limit: int = 3,
    tags: dict[str, float] | None = None,
    pair: tuple[int, str] | None = None,
    json: str = "",
) -> dict[str, int]:
    return {}


BODIES: list[Any] = [
    {"lines": [{"sku": "a", "qty": 1}]},
    {"lines": [{"sku": "a", "qty": "2"}], "mode": "slow", "tags": {"x": 1}, "json": "j"},
    {"lines": [{"sku": "a", "qty": 1}], "pair": [1, "b"]},
    {"lines": [{"sku": "a"}]},
    {"lines": [{"sku": "a", "qty": "x"}]},
    {"lines": "nope"},
    {"lines": [], "mode": "medium"},
    {"lines": [], "pair": [1, 2, 3]},
    {"lines": [], "tags": {"x": "y"}},
    {"lines": [], "limit": 11},
    {"lines": [], "limit": 10},
    {"lines": [], "extra": 1},
    [],
]


def test_a_notebook_workflow_validates_like_its_process_twin(namespace: str) -> None:
    source = register_source(TYPED.format(name="nb_typed"), "cell-typed")
    register_bundle("nb_typed", [source])
    with served_client(api_keys=(KEY,)) as c:
        for body in BODIES:
            nb = c.post("/workflows/nb_typed/start", json=body)
            proc = c.post("/workflows/api_typed/start", json=body)
            if body == {"lines": [], "limit": 11}:  # only the notebook twin has ge/le
                assert nb.status_code == 422 and proc.status_code == 202
                continue
            assert nb.status_code == proc.status_code, (body, nb.text, proc.text)
            if nb.status_code == 202:
                got = [c.get(f"/runs/{r.json()['run_id']}").json()["inputs"] for r in (nb, proc)]
                assert got[0] == got[1], body
            else:
                fields = [[f["field"] for f in r.json()["fields"]] for r in (nb, proc)]
                assert fields[0] == fields[1], (body, fields)


def test_a_bad_code_index_entry_hides_only_that_workflow(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    good = register_source(
        "from aiflow_nb import workflow\n@workflow\ndef nb_good(x: int) -> int:\n    return x\n",
        "cell-good",
    )
    register_bundle("nb_good", [good])
    r = sync_redis()
    index = keys.code_index()
    r.hset(index, "nb_garbage", b"\xff\xfe\x00 not a digest")
    r.hset(index, b"\xff\xfe garbage name", "0" * 64)
    r.hset(index, "nb_missing", "1" * 64)
    r.set(keys.code("2" * 64), b"{not json")
    r.hset(index, "nb_bad_json", "2" * 64)
    r.set(keys.code("3" * 64), dumps({"name": "nb_old", "sources": [good], "sig": None}))
    r.hset(index, "nb_old", "3" * 64)  # registered before bundles carried an interface
    bad = ["nb_garbage", "nb_missing", "nb_bad_json", "nb_old"]

    with served_client(api_keys=(KEY,)) as c:
        for _ in range(2):
            answer = c.get("/workflows")
            assert answer.status_code == 200
            names = {w["name"] for w in answer.json()["workflows"]}
            assert {"nb_good", "api_add"} <= names and not names & set(bad)
        assert c.get("/openapi.json").status_code == 200
        assert c.post("/workflows/nb_good/start", json={"x": 1}).status_code == 202
        for name, reason in (
            ("nb_missing", "missing"),
            ("nb_bad_json", "not JSON"),
            ("nb_old", "again"),
        ):
            answer = c.get(f"/workflows/{name}")
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"] == "code_rejected"
            assert name in answer.json()["message"] and reason in answer.json()["message"]
            assert c.post(f"/workflows/{name}/start", json={}).status_code == 409

    logged = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    for name in ["nb_missing", "nb_bad_json", "nb_old"]:
        assert sum(f"{name!r}" in m for m in logged) == 1, (name, logged)
    assert sum("garbage bytes" in m for m in logged) == 2, logged  # two entries, once each


def test_with_a_secret_a_tampered_interface_is_refused(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiflow_nb
    from aiflow_nb.serialization import loads

    monkeypatch.setenv("AIFLOW_SECRET", "s3cret")
    aiflow_nb.configure()
    try:
        cell = "from aiflow_nb import workflow\n@workflow\ndef nb_signed(x: int) -> int:\n"
        bundle = register_bundle("nb_signed", [register_source(cell + "    return x\n", "c")])
        with (
            _api_process(secret="s3cret") as (url, _),
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c,
        ):
            assert c.post("/workflows/nb_signed/start", json={"x": "no"}).status_code == 422
            r = sync_redis()
            doc = loads(r.get(keys.code(bundle)))
            doc["interface"]["input_schema"]["properties"]["x"] = {}  # accept anything
            r.set(keys.code(bundle), dumps(doc))
        with (
            _api_process(secret="s3cret") as (url, _),
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c,
        ):  # a fresh API process: nothing cached
            answer = c.get("/workflows/nb_signed")
            assert answer.status_code == 409 and "bad signature" in answer.json()["message"]
            assert "nb_signed" not in {w["name"] for w in c.get("/workflows").json()["workflows"]}
            assert c.post("/workflows/nb_signed/start", json={"x": "no"}).status_code == 409
    finally:
        monkeypatch.delenv("AIFLOW_SECRET")
        aiflow_nb.configure()


def test_an_interface_pydantic_cannot_build_hides_only_that_workflow(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A registered input schema whose pattern pydantic's regex engine refuses (a
    lookahead, fine for Python's re) or that nests past Python's stack: GET /workflows
    answered 500 for everyone (SchemaError / RecursionError were not a malformed
    interface)."""
    from aiflow_nb.authoring.interface import interface

    caplog.set_level(logging.WARNING)

    @workflow
    def nb_fine(x: str) -> str:
        return x

    base = interface(nb_fine)
    source = register_source("def nb_fine(x): return x\n", "cell-fine")
    register_bundle("nb_fine", [source], interface=base)
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(240):  # JSON (orjson) writes at most 255 levels; Python's stack less
        deep = {"type": "array", "items": deep}
    for name, prop in (
        ("nb_lookahead", {"type": "string", "pattern": "^(?=a)a"}),
        ("nb_deep", deep),
    ):
        schema = {**base["input_schema"], "properties": {"x": prop}}
        register_bundle(name, [source], interface={**base, "input_schema": schema})

    with served_client(api_keys=(KEY,)) as c:
        answer = c.get("/workflows")
        assert answer.status_code == 200, answer.text
        names = {w["name"] for w in answer.json()["workflows"]}
        assert "nb_fine" in names and not names & {"nb_lookahead", "nb_deep"}
        for name in ("nb_lookahead", "nb_deep"):
            answer = c.get(f"/workflows/{name}")
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"] == "code_rejected"
        assert c.get("/healthz").status_code == 200
