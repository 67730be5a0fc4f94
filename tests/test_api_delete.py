"""``DELETE /runs/{id}`` on a real server: an API key deletes a finished run (then 404
everywhere), a scoped run token is refused, an unknown run is 404, an unfinished one 409."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aiflow_nb import keys
from aiflow_nb.api import ServerThread
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.store import sync_redis

from support.api import KEY, client, serve, wait_status


@pytest.fixture
def server(namespace: str) -> Iterator[ServerThread]:
    with serve(api_keys=(KEY,)) as srv:
        ensure_local_worker(force=True)  # the API never executes runs: this process's worker
        yield srv


def test_api_key_deletes_a_finished_run_and_it_is_404_after(server: ServerThread) -> None:
    with client(server) as c:
        run_id = c.post("/workflows/api_add/run", json={"a": 1}).json()["run_id"]
        token = c.post(f"/runs/{run_id}/token", params={"ttl": 60}).json()["token"]
        with client(server, key=token) as scoped:
            refused = scoped.delete(f"/runs/{run_id}")
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "token_scope"
            assert scoped.get(f"/runs/{run_id}").status_code == 200  # still there
        r = c.delete(f"/runs/{run_id}")
        assert r.status_code == 200, r.text
        assert r.json() == {"run_id": run_id, "deleted": True}
        for path in (f"/runs/{run_id}", f"/runs/{run_id}/output", f"/runs/{run_id}/events"):
            gone = c.get(path)
            assert gone.status_code == 404, (path, gone.text)
            assert gone.json()["error"] == "run_not_found"
        assert run_id not in [row["run_id"] for row in c.get("/runs").json()["runs"]]
        again = c.delete(f"/runs/{run_id}")
        assert again.status_code == 404 and again.json()["error"] == "run_not_found"
        assert c.delete("/runs/no-such-run").status_code == 404
    assert not sync_redis().exists(*keys.run_keys(run_id))


def test_an_unfinished_run_is_409_and_kept(server: ServerThread) -> None:
    with client(server) as c:
        run_id = c.post("/workflows/api_ticker/start", json={"n": 400, "delay": 0.05}).json()[
            "run_id"
        ]
        wait_status(c, run_id, "running")
        r = c.delete(f"/runs/{run_id}")
        assert r.status_code == 409, r.text
        assert "only finished runs" in r.json()["message"]
        assert c.get(f"/runs/{run_id}").json()["status"] == "running"
        c.post(f"/runs/{run_id}/cancel")
        assert wait_status(c, run_id, "cancelled")["status"] == "cancelled"
        assert c.delete(f"/runs/{run_id}").status_code == 200
    with client(server, key=None) as anon:
        assert anon.delete(f"/runs/{run_id}").status_code == 401
