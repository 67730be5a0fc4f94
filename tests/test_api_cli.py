"""``aiflow api --app MODULE``: a real server process; the run executes on a worker in
another process (this one), the two meeting only in Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from aiflow_nb.api.server import free_port
from aiflow_nb.ops.local import ensure_local_worker

from support import PYTHONPATH
from support.api import KEY
from support.processes import wait_serving


def test_aiflow_api_serves_the_app_modules_workflows(namespace: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "AIFLOW_API_KEYS": KEY,
        "AIFLOW_LOCAL_WORKER": "0",
    }
    code = "import sys; from aiflow_nb.cli import main; sys.argv[0] = 'aiflow'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "api", "--app", "support.api", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(proc, f"{url}/healthz", timeout=20)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            assert "api_add" in {w["name"] for w in c.get("/workflows").json()["workflows"]}
            assert c.get("/healthz").json()["workers"] == 0  # the server runs no worker
            ensure_local_worker(force=True)
            r = c.post("/workflows/api_add/run", json={"a": 20, "b": 22}, timeout=30)
            assert r.json()["output"] == 42
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"API keys required" in err
