"""Helpers for the notebook tests: an in-process IPython shell with the extension loaded,
a recording comm (ipywidgets' DummyComm, but it keeps what each widget was sent), and an
out-of-kernel worker subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import PYTHONPATH

WORKER = [str(Path(sys.executable).with_name("aiflow")), "worker"]
"""``aiflow worker``, the console script next to this interpreter."""


class RecordingComm:
    """Stands in for the kernel's comm (no frontend in a unit test); records every message
    a widget sends, like ipywidgets' own ``DummyComm``."""

    kernel = "Truthy"

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.opened = kwargs
        self.messages: list[dict[str, Any]] = []
        self.closed = False

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, buffers: Any = None, **kwargs: Any) -> None:
        self.messages.append(data)

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.closed = True

    def updates(self, key: str) -> list[Any]:
        """Values sent for trait ``key``, in order."""
        return [
            m["state"][key]
            for m in self.messages
            if m.get("method") == "update" and key in m.get("state", {})
        ]


@pytest.fixture(name="comms")
def comms_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    """Every comm a widget opens during the test, recorded."""
    import comm

    made: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield made
    from ipywidgets import Widget

    Widget.close_all()


@pytest.fixture(name="shell")
def shell_fixture() -> Iterator[Any]:
    """IPython's InteractiveShell with ``%load_ext aiflow_nb`` done (fresh user namespace)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.reset(new_session=False)
    ip.extension_manager.loaded.discard("aiflow_nb")
    ip.run_line_magic("load_ext", "aiflow_nb")
    yield ip
    ip.reset(new_session=False)


def run_cell(ip: Any, source: str) -> Any:
    """Run a cell; return the result object (``error_in_exec`` holds a raised error)."""
    return ip.run_cell(source, store_history=False)


def start_worker(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """An out-of-kernel worker process on this test's Redis and namespace."""
    full = {**os.environ, "PYTHONPATH": PYTHONPATH, **(env or {})}
    proc = subprocess.Popen(
        WORKER, env=full, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_workers(1)
    return proc


def wait_for_workers(count: int, timeout: float = 20.0) -> None:
    from aiflow_nb.ops.presence import live_workers

    deadline = time.monotonic() + timeout
    while len(live_workers()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} workers live after {timeout} s")
        time.sleep(0.05)


def stop_worker(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def notebook(cells: list[str]) -> Any:
    """A notebook of code cells for a python3 kernel (nbclient runs it)."""
    from nbformat.v4 import new_code_cell, new_notebook

    return new_notebook(
        cells=[new_code_cell(c) for c in cells],
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
    )


def stdout_of(cell: Any) -> str:
    """What an executed cell printed."""
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
