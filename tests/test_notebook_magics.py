"""The magics through IPython's InteractiveShell, in process: %load_ext, %%component,
%%workflow, %aiflow run/attach/runs/worker/status/viewer, and every bad-cell error."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

import aiflow_nb
from aiflow_nb import keys
from aiflow_nb.authoring.component import Component
from aiflow_nb.authoring.workflow import Workflow
from aiflow_nb.errors import CellError, InvalidInputs, RunNotFound, WorkflowNotFound
from aiflow_nb.notebook import CodeSession
from aiflow_nb.ops.local import local_worker, stop_local_worker
from aiflow_nb.redaction import shown_url
from aiflow_nb.store import redis_url, sync_redis

from support.notebook import run_cell, shell_fixture, start_worker, stop_worker  # noqa: F401
from support.outage import PrivateRedis, private_redis_fixture  # noqa: F401


def code_keys() -> set[bytes]:
    return set(sync_redis().scan_iter(match=keys.code("*")))


SHOUT = """%%component shout --retries 2 --backoff fixed --cache 10m --timeout 5
import string

def _shout(text: str) -> str:
    return string.capwords(text).upper()
"""

HELLO = """%%workflow hello
def hello(name: str) -> str:
    return shout("hello " + name)
"""


def test_load_ext_prints_one_status_line_and_starts_in_kernel_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    stop_local_worker()
    ip = InteractiveShell.instance()
    ip.extension_manager.loaded.discard("aiflow_nb")
    ip.run_line_magic("load_ext", "aiflow_nb")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    ns = aiflow_nb.settings().namespace
    assert lines[0].startswith(f"aiflow-nb: Redis {shown_url(redis_url())} · ")
    assert f"namespace {ns}" in lines[0]
    assert "0 out-of-kernel workers live" in lines[0]
    assert lines[0].endswith("in-kernel worker started")
    assert local_worker() is not None


def test_load_ext_starts_no_in_kernel_worker_when_an_out_of_kernel_one_is_live(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    stop_local_worker()
    proc = start_worker()
    try:
        ip = InteractiveShell.instance()
        ip.extension_manager.loaded.discard("aiflow_nb")
        ip.run_line_magic("load_ext", "aiflow_nb")
        line = capsys.readouterr().out.strip()
        assert "1 out-of-kernel worker live" in line
        assert line.endswith("no in-kernel worker")
        assert local_worker() is None
        ip.run_line_magic("aiflow", "worker start")
        assert local_worker() is not None
        assert capsys.readouterr().out.strip().endswith("in-kernel worker started")
        ip.run_line_magic("aiflow", "worker stop")
        assert local_worker() is None
        ip.run_line_magic("aiflow", "worker status")
        assert capsys.readouterr().out.strip().endswith("no in-kernel worker")
    finally:
        stop_worker(proc)


def test_component_cell_defines_a_component_usable_at_once_and_registers_its_source(
    shell: Any,
) -> None:
    before = code_keys()
    result = run_cell(shell, SHOUT)
    assert result.error_in_exec is None
    shout = shell.user_ns["shout"]
    assert isinstance(shout, Component) and shout.name == "shout"
    assert shout("hi there") == "HI THERE"  # a plain call, right away
    p = shout.policies
    assert (p.retry.attempts, p.retry.backoff) == (3, "fixed")  # 2 retries = 3 attempts
    assert p.cache is not None and p.cache.ttl == 600
    assert p.timeout is not None and p.timeout.seconds == 5
    added = code_keys() - before
    assert len(added) == 1
    from aiflow_nb.serialization import loads

    doc = loads(sync_redis().get(added.pop()))
    assert "def _shout(text: str) -> str:" in doc["source"]
    assert "import string" in doc["source"]


def test_workflow_cell_runs_on_a_worker_from_its_registered_bundle(shell: Any) -> None:
    run_cell(shell, SHOUT)
    assert run_cell(shell, HELLO).error_in_exec is None
    wf = shell.user_ns["hello"]
    assert isinstance(wf, Workflow) and wf.code_bundle
    handle = shell.run_line_magic("aiflow", "run hello name='ada lovelace'")
    assert handle.result(timeout=20) == "HELLO ADA LOVELACE"
    assert handle.record()["code"] == wf.code_bundle
    # the worker executed the registered source (its own module), not the kernel's objects
    from aiflow_nb.ops.code import load_workflow

    loaded = load_workflow(wf.code_bundle)
    assert loaded is not wf and loaded.fn.__module__ != wf.fn.__module__


def test_workflow_runs_on_an_out_of_kernel_worker_that_never_saw_the_notebook(shell: Any) -> None:
    stop_local_worker()
    proc = start_worker()
    try:
        run_cell(shell, SHOUT)
        run_cell(shell, HELLO)
        handle = shell.run_line_magic("aiflow", "run hello name=grace")
        assert handle.result(timeout=20) == "HELLO GRACE"
        assert local_worker() is None
        assert str(proc.pid) in handle.record()["worker"]
    finally:
        stop_worker(proc)


def test_redefining_a_component_registers_a_new_version_and_runs_going_keep_theirs(
    shell: Any,
) -> None:
    run_cell(
        shell,
        "%%component step\nimport time\ndef step() -> str:\n    time.sleep(0.5)\n    return 'v1'\n",
    )
    run_cell(shell, "%%workflow pipe\ndef pipe() -> str:\n    return step()\n")
    first = shell.user_ns["pipe"].start()
    deadline = time.monotonic() + 10
    while first.status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    out = run_cell(shell, "%%component step\ndef step() -> str:\n    return 'v2'\n")
    assert out.error_in_exec is None
    second = shell.user_ns["pipe"].start()
    assert first.record()["code"] != second.record()["code"]
    assert first.result(timeout=20) == "v1"
    assert second.result(timeout=20) == "v2"
    assert shell.user_ns["step"]() == "v2"


def test_a_workflow_picks_up_components_defined_after_it(shell: Any) -> None:
    run_cell(shell, "%%workflow late\ndef late(x: int) -> int:\n    return double(x) + 1\n")
    run_cell(shell, "%%component double\ndef double(x: int) -> int:\n    return 2 * x\n")
    handle = shell.run_line_magic("aiflow", "run late x=20")
    assert handle.result(timeout=20) == 41


def test_run_magic_shows_the_run_once_and_returns_its_handle(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cell(shell, SHOUT)
    run_cell(shell, HELLO)
    capsys.readouterr()
    result = run_cell(shell, "%aiflow run hello name=x")
    handle = result.result
    assert handle.result(timeout=20) == "HELLO X"
    out = capsys.readouterr().out
    assert out.count(f"run {handle.run_id}") == 1  # displayed by the magic, not again as Out
    assert "hello" in out


def test_attach_magic_shows_history_of_a_run_started_elsewhere(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    other = CodeSession()  # another kernel's cells
    ns: dict[str, Any] = {}
    other.define("component", "inc", "def inc(x: int) -> int:\n    return x + 1\n", ns)
    other.define("workflow", "plus", "def plus(x: int) -> int:\n    return inc(inc(x))\n", ns)
    handle = ns["plus"].start(x=1)
    assert handle.result(timeout=20) == 3
    capsys.readouterr()
    attached = shell.run_line_magic("aiflow", f"attach {handle.run_id}")
    assert attached == handle
    out = capsys.readouterr().out
    assert f"run {handle.run_id} · plus · completed" in out
    assert out.count("✓ inc") == 2 and "output: 3" in out


def test_run_magic_starts_a_workflow_registered_by_another_kernel(shell: Any) -> None:
    other = CodeSession()
    ns: dict[str, Any] = {}
    other.define(
        "workflow",
        "remote_only",
        "def remote_only(n: int) -> list:\n    return list(range(n))\n",
        ns,
    )
    assert "remote_only" not in shell.user_ns
    aiflow_nb.authoring.registry.unregister("remote_only")
    handle = shell.run_line_magic("aiflow", "run remote_only n=3")
    assert handle.result(timeout=20) == [0, 1, 2]


def test_runs_magic_returns_a_filtered_dataframe(shell: Any) -> None:
    run_cell(
        shell,
        "%%workflow flaky\ndef flaky(ok: bool) -> str:\n"
        "    if not ok:\n        raise RuntimeError('no')\n    return 'yes'\n",
    )
    good = shell.run_line_magic("aiflow", "run flaky ok=True")
    bad = shell.run_line_magic("aiflow", "run flaky ok=False")
    good.wait(20), bad.wait(20)
    frame = shell.run_line_magic("aiflow", "runs --workflow flaky --status failed --limit 5")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["run_id"]) == [bad.run_id]
    assert "RuntimeError: no" in frame["error"][0]
    assert len(shell.run_line_magic("aiflow", "runs -n 1")) == 1


def test_magic_errors_are_clear(shell: Any) -> None:
    with pytest.raises(RunNotFound):
        shell.run_line_magic("aiflow", "attach nope")
    with pytest.raises(WorkflowNotFound, match="no workflow named 'nope'"):
        shell.run_line_magic("aiflow", "run nope")
    run_cell(shell, HELLO.replace("shout(", "str("))
    with pytest.raises(InvalidInputs, match="key=value"):
        shell.run_line_magic("aiflow", "run hello ada")
    with pytest.raises(InvalidInputs, match="hello"):
        shell.run_line_magic("aiflow", "run hello nom=1")
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        shell.run_line_magic("aiflow", "explode")


@pytest.mark.filterwarnings("ignore:Widget.name is deprecated:PendingDeprecationWarning")
def test_viewer_magic_shows_the_dashboard_inline(shell: Any) -> None:
    run_cell(shell, HELLO.replace("shout(", "str("))
    handle = shell.run_line_magic("aiflow", "run hello name=v")
    handle.wait(20)
    page = shell.run_line_magic("aiflow", f"viewer {handle.run_id}")
    import panel as pn

    assert isinstance(page, pn.viewable.Viewable)


BAD_CELLS = {
    "syntax": ("%%component broken\ndef broken(:\n    pass\n", "does not compile"),
    "no function": ("%%component nothing\nx = 1\n", "defines no function"),
    "two functions": (
        "%%component twice\ndef a():\n    pass\ndef b():\n    pass\n",
        "defines 2 functions (a, b)",
    ),
    "return outside": ("%%component ret\ndef f():\n    pass\nreturn 1\n", "does not compile"),
    "raises": ("%%component boom\nraise KeyError('x')\ndef boom():\n    pass\n", "raised KeyError"),
    "bad name": ("%%component 2fast\ndef f():\n    pass\n", "must be a Python identifier"),
    "workflow two": (
        "%%workflow wf\ndef a():\n    pass\nasync def b():\n    pass\n",
        "defines 2 functions",
    ),
    "bad cache": ("%%component c --cache soon\ndef c():\n    pass\n", "positive duration"),
    "bad retries": ("%%component c --retries -1\ndef c():\n    pass\n", "--retries must be"),
    "backoff alone": ("%%component c --backoff fixed\ndef c():\n    pass\n", "needs --retries"),
}


@pytest.mark.parametrize("case", sorted(BAD_CELLS))
def test_bad_cell_gets_a_clear_error_and_registers_nothing(shell: Any, case: str) -> None:
    source, message = BAD_CELLS[case]
    before = code_keys()
    names = set(shell.user_ns)
    result = run_cell(shell, source)
    assert isinstance(result.error_in_exec, CellError), result.error_in_exec
    assert message in str(result.error_in_exec)
    assert (
        "nothing was registered" in str(result.error_in_exec)
        or case.startswith("bad")
        or case == "backoff alone"
    )
    assert code_keys() == before
    name = source.split()[1]
    assert name not in set(shell.user_ns) - names


def test_bad_option_value_types_are_usage_errors(shell: Any) -> None:
    from IPython.core.error import UsageError

    result = run_cell(shell, "%%component c --retries many\ndef c():\n    pass\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert code_keys() == set()


def test_run_inputs_are_python_literals_with_spaces_else_strings(shell: Any) -> None:
    from aiflow_nb.notebook.magics import parse_inputs

    assert parse_inputs(
        "urls=['https://a.test/x', 'https://b.test/y'] n=3 name='ada lovelace' topic=redis streams"
    ) == {
        "urls": ["https://a.test/x", "https://b.test/y"],
        "n": 3,
        "name": "ada lovelace",
        "topic": "redis streams",
    }
    run_cell(
        shell, "%%workflow echo\ndef echo(items: list, n: int) -> list:\n    return items * n\n"
    )
    handle = shell.run_line_magic("aiflow", "run echo items=['a b', {'c': 1}] n=2")
    assert handle.result(timeout=20) == ["a b", {"c": 1}, "a b", {"c": 1}]


def test_workflow_cell_retention_keeps_its_finished_runs_that_long(
    shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIFLOW_RETENTION", "2s")
    aiflow_nb.configure()
    cell = "%%workflow kept --retention 90s\ndef kept(x: int) -> int:\n    return x\n"
    assert run_cell(shell, cell).error_in_exec is None
    assert shell.user_ns["kept"].retention == 90.0
    handle = shell.run_line_magic("aiflow", "run kept x=3")
    assert handle.result(timeout=20) == 3
    assert 2000 < sync_redis().pttl(keys.run(handle.run_id)) <= 90_000
    bad = run_cell(shell, "%%workflow soon --retention soon\ndef soon() -> None:\n    pass\n")
    assert isinstance(bad.error_in_exec, CellError), bad.error_in_exec
    assert "--retention must be a positive duration" in str(bad.error_in_exec)


def test_respond_magic_answers_a_parked_run(shell: Any) -> None:
    """A notebook workflow parks at ``wait_for_input``; ``%aiflow respond`` answers it
    (refusals are usage errors saying why) and the run resumes from its code bundle."""
    from IPython.core.error import UsageError

    from support.ops import wait_for

    run_cell(
        shell,
        "%%workflow asker\ndef asker() -> bool:\n"
        "    import aiflow_nb\n    return aiflow_nb.wait_for_input('ok', bool)\n",
    )
    handle = shell.run_line_magic("aiflow", "run asker")
    wait_for(lambda: handle.status == "waiting", 20, "the run to park")
    with pytest.raises(UsageError, match="not of type 'boolean'"):
        shell.run_line_magic("aiflow", f"respond {handle.run_id} ok '\"no\"'")
    with pytest.raises(UsageError, match="must be JSON"):
        shell.run_line_magic("aiflow", f"respond {handle.run_id} ok nope")
    shell.run_line_magic("aiflow", f"respond {handle.run_id} ok true")
    assert handle.result(timeout=20) is True
    received = [e.data for e in handle.events(follow=False) if e.type == "input.received"]
    assert [d["by"] for d in received] == ["python"]  # an InteractiveShell is no kernel


def test_aiflow_alone_prints_one_line_per_subcommand(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_cell(shell, "%aiflow").error_in_exec is None
    lines = capsys.readouterr().out.strip().splitlines()
    subcommands = ["run", "attach", "resume", "rerun", "cancel", "respond", "runs", "worker"]
    subcommands += ["status", "viewer"]
    assert lines[0].startswith("%aiflow SUBCOMMAND")
    assert [line.split()[1] for line in lines[1:]][: len(subcommands)] == subcommands
    assert lines[1].split()[:4] == ["%aiflow", "run", "WORKFLOW", "[key=value"]
    assert "start a run and show it live" in lines[1]
    assert all(line.startswith("  %aiflow ") for line in lines[1:])


def test_an_unknown_subcommand_lists_every_choice(shell: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("aiflow", "bogus")
    message = str(raised.value)
    assert "invalid choice: 'bogus'" in message
    names = ("run", "attach", "resume", "rerun", "cancel", "respond", "runs", "worker", "viewer")
    for name in names:
        assert f"'{name}'" in message


def test_run_inputs_are_checked_against_the_signature(shell: Any) -> None:
    run_cell(shell, "%%workflow typed\ndef typed(n: int, tag: str = 'x') -> int:\n    return n\n")
    before = len(aiflow_nb.runs(workflow="typed"))
    with pytest.raises(InvalidInputs) as raised:
        shell.run_line_magic("aiflow", "run typed n=oops")
    assert str(raised.value) == (
        "inputs for workflow 'typed': n: Input should be a valid integer, unable to parse "
        "string as an integer (got 'oops')"
    )
    assert raised.value.fields == [
        {
            "field": "n",
            "message": "Input should be a valid integer, unable to parse string as an "
            "integer (got 'oops')",
        }
    ]
    with pytest.raises(InvalidInputs, match="tag: Input should be a valid string"):
        shell.run_line_magic("aiflow", "run typed n=1 tag=[1]")
    with pytest.raises(InvalidInputs, match="n: Field required; m: Extra inputs"):
        shell.run_line_magic("aiflow", "run typed m=1")
    assert len(aiflow_nb.runs(workflow="typed")) == before  # nothing was started
    handle = shell.run_line_magic("aiflow", "run typed n='41'")  # "41" is an int's text
    assert handle.result(timeout=20) == 41
    assert handle.record()["inputs"] == {"n": 41}  # the int, not the text


def test_component_cell_defines_the_function_while_redis_is_down_and_registers_it_later(
    private_redis: PrivateRedis,
    shell: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiflow_nb import defaults

    monkeypatch.setattr(defaults, "CODE_REGISTER_RETRY", 0.0)  # try again at each cell
    stop_local_worker()
    private_redis.kill()
    capsys.readouterr()
    result = run_cell(shell, SHOUT)
    assert result.error_in_exec is None, result.error_in_exec
    assert shell.user_ns["shout"]("redis is down") == "REDIS IS DOWN"  # defined here
    out = capsys.readouterr().out
    assert "component shout v1 defined in this kernel; Redis is unreachable" in out
    assert "registered when Redis is back" in out
    assert run_cell(shell, "%%workflow yell\ndef yell(t: str) -> str:\n    return shout(t)\n")
    assert shell.user_ns["yell"].code_bundle is None  # no bundle while Redis is away
    assert "workflow yell v1 defined in this kernel" in capsys.readouterr().out

    private_redis.restart()
    assert run_cell(shell, "x = 1").error_in_exec is None  # any cell: post_run_cell
    assert capsys.readouterr().out.strip() == (
        "aiflow-nb: Redis is back; registered component shout v1, workflow yell v1"
    )
    from aiflow_nb.serialization import loads

    r = sync_redis()
    docs = [loads(r.get(k)) for k in code_keys() if r.type(k) == b"string"]
    assert any("def _shout(text: str) -> str:" in d.get("source", "") for d in docs)
    wf = shell.user_ns["yell"]
    assert wf.code_bundle is not None
    handle = shell.run_line_magic("aiflow", "run yell t='back again'")
    assert handle.result(timeout=30) == "BACK AGAIN"
    assert handle.record()["code"] == wf.code_bundle
    assert run_cell(shell, "y = 2").error_in_exec is None
    assert "Redis is back" not in capsys.readouterr().out  # said once
