"""Re-attach after kernel death, in real Jupyter kernels driven by nbclient: kernel 1
starts a long run on an out-of-kernel worker and is killed (SIGKILL); kernel 2 attaches
and sees the full history, then the live tail up to the completion."""

from __future__ import annotations

import json
import signal
import time

import nbformat
import pytest
from nbclient import NotebookClient

from aiflow_nb import attach, keys
from aiflow_nb.store import sync_redis

from support.notebook import notebook, start_worker, stdout_of, stop_worker

STEPS = 8
GATE = "gate"  # the run waits after step 3 until the test sets this Redis key (namespaced)

KERNEL_1 = [
    "%load_ext aiflow_nb",
    "%%component slow_step\nimport time\n\ndef slow_step(i: int) -> int:\n"
    "    time.sleep(0.2)\n    return i\n",
    "%%component gate\nimport time\nfrom aiflow_nb import keys\nfrom aiflow_nb.store import "
    "sync_redis\n\ndef gate(name: str) -> bool:\n"
    "    while not sync_redis().exists(keys.cache('test', name)):\n"
    "        time.sleep(0.05)\n    return True\n",
    "%%workflow long_job\ndef long_job(n: int) -> int:\n    total = 0\n"
    "    for i in range(n):\n        total += slow_step(i)\n        if i == 2:\n"
    f"            gate({GATE!r})\n    return total\n",
    f"job = %aiflow run long_job n={STEPS}\nprint('RUN', job.run_id)",
]


def kernel_2(run_id: str) -> list[str]:
    return [
        "%load_ext aiflow_nb",
        f"import json\nfrom aiflow_nb import attach\nprint(json.dumps(attach({run_id!r}).status))",
        f"watched = %aiflow attach {run_id}",
        "events = list(watched.events())  # the full history, then the live tail\n"
        "print(json.dumps([[e.id, e.type, e.name] for e in events]))",
        "watched.widget.wait(30)  # the widget drew the end and refreshed its display",
    ]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_second_kernel_reattaches_to_a_run_whose_kernel_died(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIFLOW_LOCAL_WORKER", "0")  # the run lives on the worker process
    worker = start_worker()
    try:
        nb1 = notebook(KERNEL_1)
        first = NotebookClient(nb1, timeout=60, kernel_name="python3")
        with first.setup_kernel():
            for index, cell in enumerate(nb1.cells):
                first.execute_cell(cell, index)
            run_id = stdout_of(nb1.cells[4]).split("RUN ")[1].split()[0]
            handle = attach(run_id)
            deadline = time.monotonic() + 20
            while not any(
                s.status == "completed" and s.name == "slow_step" for s in handle.spans()
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert first.km is not None and first.km.provisioner is not None
            process = first.km.provisioner.process  # type: ignore[attr-defined]
            process.send_signal(signal.SIGKILL)  # the kernel dies, no goodbye
            assert process.wait(10) == -signal.SIGKILL
        assert handle.status == "running"  # the run did not die with its kernel

        nb2 = notebook(kernel_2(run_id))
        second = NotebookClient(nb2, timeout=60, kernel_name="python3")
        with second.setup_kernel():
            for index, cell in enumerate(nb2.cells):
                if index == 3:  # attached mid-run: now let the run go on to its end
                    sync_redis().set(keys.cache("test", GATE), 1)
                second.execute_cell(cell, index)
        assert json.loads(stdout_of(nb2.cells[1])) == "running"  # attached mid-run
        seen = json.loads(stdout_of(nb2.cells[3]))
        stream = [[e.id, e.type, e.name] for e in handle.events(follow=False)]
        assert seen == stream  # every event once, in order: history then live tail
        assert seen[0][1] == "run.queued" and seen[-1][1] == "run.completed"
        assert sum(1 for e in seen if e[1:] == ["span.completed", "slow_step"]) == STEPS
        assert handle.result() == sum(range(STEPS))
        shown = nb2.cells[2].outputs
        assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]
        assert f"run {run_id} · long_job · completed" in shown[0]["data"]["text/plain"]
        nbformat.validate(nb2)
    finally:
        stop_worker(worker)
