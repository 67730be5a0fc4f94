"""Kernel death in real Jupyter kernels (nbclient), with the default setup
(``%load_ext aiflow_nb`` and nothing else): a ``%%workflow`` cell's run survives SIGKILL
of its kernel and completes by itself on this machine's code worker daemon; a plain-cell
workflow's run waits, says why, and continues once a new kernel defines it again."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from nbclient import NotebookClient

from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.ops.daemon import daemons, stop_daemons
from aiflow_nb.ops.presence import live_workers, process_alive
from aiflow_nb.store import sync_redis

from support.helpers import wait_for
from support.notebook import notebook, stdout_of
from support.ops import FAST

TTL = float(FAST["AIFLOW_HEARTBEAT_TTL"])
STEPS = 6
GATE = "gate"  # the run waits after step 2 until the test sets this Redis key (namespaced)

CELLS = [
    "%load_ext aiflow_nb",
    "%%component slow_step\nimport time\n\ndef slow_step(i: int) -> int:\n"
    "    time.sleep(0.1)\n    return i\n",
    "%%component gate\nimport time\nfrom aiflow_nb import keys\nfrom aiflow_nb.store import "
    "sync_redis\n\ndef gate(name: str) -> bool:\n"
    "    while not sync_redis().exists(keys.cache('test', name)):\n"
    "        time.sleep(0.05)\n    return True\n",
    "%%workflow long_job\ndef long_job(n: int) -> int:\n    total = 0\n"
    "    for i in range(n):\n        total += slow_step(i)\n        if i == 1:\n"
    f"            gate({GATE!r})\n    return total\n",
    f"job = %aiflow run long_job n={STEPS}\nprint('RUN', job.run_id)",
]

PLAIN = (
    "import aiflow_nb as af\n\n@af.component\ndef plain_step(i: int) -> int:\n"
    "    return i\n\n@af.workflow\ndef plain_job(n: int) -> int:\n"
    "    total = sum(plain_step(i) for i in range(2))\n"
    f"    from aiflow_nb import keys\n    from aiflow_nb.store import sync_redis\n"
    "    import time\n"
    f"    while not sync_redis().exists(keys.cache('test', {GATE!r})):\n"
    "        time.sleep(0.05)\n    return total + n\n"
)


@pytest.fixture
def kernel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default setup (the suite turns the daemon off), with fast heartbeats; every
    daemon started is stopped."""
    monkeypatch.setenv("AIFLOW_CODE_WORKER", "1")
    monkeypatch.delenv("AIFLOW_LOCAL_WORKER", raising=False)
    for name in ("AIFLOW_HEARTBEAT_INTERVAL", "AIFLOW_HEARTBEAT_TTL"):
        monkeypatch.setenv(name, FAST[name])
    try:
        yield
    finally:
        stopped = stop_daemons(timeout=15)
        assert not [pid for pid in stopped if process_alive(pid)]


def kill_kernel(client: NotebookClient) -> int:
    assert client.km is not None and client.km.provisioner is not None
    process = client.km.provisioner.process  # type: ignore[attr-defined]
    process.send_signal(signal.SIGKILL)  # the kernel dies, no goodbye
    assert process.wait(10) == -signal.SIGKILL
    return int(process.pid)


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.usefixtures("kernel_env")
def test_a_workflow_cells_run_completes_by_itself_after_its_kernel_is_killed() -> None:
    nb = notebook(CELLS)
    client = NotebookClient(nb, timeout=60, kernel_name="python3")
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        assert "code worker daemon started" in stdout_of(nb.cells[0])
        run_id = stdout_of(nb.cells[4]).split("RUN ")[1].split()[0]
        handle = RunHandle(run_id)
        wait_for(
            lambda: (
                sum(s.name == "slow_step" and s.status == "completed" for s in handle.spans()) == 2
            ),
            20,
            "two steps done",
        )
        holder = handle.record()["worker"]
        wait_for(lambda: daemons(), 20, "the code worker daemon to heartbeat")
        kernel_pid = kill_kernel(client)
    killed_at = time.monotonic()
    assert f"-{kernel_pid}-" in holder  # the kernel's own worker had it: the hard case
    sync_redis().set(keys.cache("test", GATE), 1)
    assert handle.result(timeout=TTL + 10) == sum(range(STEPS))
    took = time.monotonic() - killed_at
    print(f"kernel SIGKILLed -> run completed in {took:.2f} s (heartbeat TTL {TTL} s)")
    rec = handle.record()
    assert rec["worker"] == daemons()[0]["id"] and rec["attempt"] == 2
    assert took < TTL + 5, took
    replayed = [e.name for e in handle.events(follow=False) if e.type == "span.replayed"]
    assert replayed.count("slow_step") == 2  # the journal, not a re-run
    assert not any(int(w["pid"]) == kernel_pid for w in live_workers())


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.usefixtures("kernel_env")
def test_a_plain_cell_workflows_run_waits_for_its_kernel_and_continues_when_defined_again() -> None:
    first = notebook(
        ["%load_ext aiflow_nb", PLAIN, "job = plain_job.start(n=5)\nprint('RUN', job.run_id)"]
    )
    client = NotebookClient(first, timeout=60, kernel_name="python3")
    with client.setup_kernel():
        for index, cell in enumerate(first.cells):
            client.execute_cell(cell, index)
        run_id = stdout_of(first.cells[2]).split("RUN ")[1].split()[0]
        handle = RunHandle(run_id)
        wait_for(lambda: handle.status == "running", 20, "the run to start in the kernel")
        wait_for(lambda: daemons(), 20, "the code worker daemon (it runs a monitor)")
        kill_kernel(client)
    # the daemon's monitor re-queues it; only a kernel defining plain_job can run it
    wait_for(lambda: handle.status == "queued", TTL + 10, "the run to be re-queued")
    time.sleep(1.0)
    assert handle.status == "queued"
    assert handle.waiting is not None
    assert handle.waiting.startswith("no live worker serves workflow 'plain_job'")
    sync_redis().set(keys.cache("test", GATE), 1)
    second = notebook(["%load_ext aiflow_nb", PLAIN, f"print('STATUS', {run_id!r})"])
    client = NotebookClient(second, timeout=60, kernel_name="python3")
    with client.setup_kernel():
        for index, cell in enumerate(second.cells):
            client.execute_cell(cell, index)
        assert handle.result(timeout=20) == 1 + 5  # defining it again continued the run
    replayed = [e.name for e in handle.events(follow=False) if e.type == "span.replayed"]
    assert replayed == ["plain_step", "plain_step"]
