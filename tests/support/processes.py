"""Subprocesses of the tests: ``python -c`` with this test's Redis and namespace, and
waiting until a server process answers HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx

from . import PYTHONPATH


def python_subprocess(code: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python -c code`` with this test's Redis and namespace in its environment."""
    full = {**os.environ, "PYTHONPATH": PYTHONPATH, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=full,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_serving(proc: subprocess.Popen[Any], url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers HTTP (any status); fail at once if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(
                    f"the server exited ({proc.returncode}) before {url} answered: {err!r}"
                ) from None
            assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
            time.sleep(0.05)


def terminate(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM ``proc`` and reap it; SIGKILL if it is still there after ``grace`` s."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
