"""The notebooks in notebooks/, executed by nbval in a real kernel against this test's
Redis and namespace: outputs compared (notebooks/sanitize.cfg masks ids and times), and
each notebook's cells assert what they show, so a broken feature fails its notebook."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import ROOT

NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_resume_and_reattach.ipynb",
    "03_llm_workflow.ipynb",
    "04_human_in_the_loop.ipynb",
    "05_iterate.ipynb",
]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_passes_nbval(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AIFLOW_LOCAL_WORKER", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",  # not the deprecated --sanitize-with
            str(ROOT / "notebooks" / "sanitize.cfg"),
            "--nbval-cell-timeout",
            "120",
            "-p",
            "no:cacheprovider",
            "-q",
            str(ROOT / "notebooks" / name),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
