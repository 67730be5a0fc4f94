"""Running the real ``aiflow`` console script in a subprocess, on this test's Redis and
namespace (the environment the ``namespace`` fixture set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import PYTHONPATH

__all__ = ["AIFLOW", "aiflow", "usage_error"]

AIFLOW = str(Path(sys.executable).with_name("aiflow"))


def aiflow(*args: str | bytes, **env: str) -> subprocess.CompletedProcess[str]:
    """``aiflow ARGS`` in a process of its own (no in-kernel worker of its own)."""
    environ = {**os.environ, "PYTHONPATH": PYTHONPATH, "AIFLOW_LOCAL_WORKER": "0", **env}
    return subprocess.run(
        [AIFLOW, *args], env=environ, capture_output=True, text=True, timeout=60, errors="replace"
    )


def usage_error(done: subprocess.CompletedProcess[str]) -> str:
    """The error of a usage error (exit 2, a usage line, no traceback)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("Usage: aiflow")
    return done.stderr
