"""REST API, security: API keys, scoped run tokens, the loopback rule, unguessable ids."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest

from aiflow_nb.api import ServerThread, create_app
from aiflow_nb.api.config import ApiConfig, read_keys
from aiflow_nb.api.errors import ApiError
from aiflow_nb.api.tokens import issue_token, verify_token
from aiflow_nb.errors import ConfigError
from aiflow_nb.ops.local import ensure_local_worker
from aiflow_nb.ops.submit import new_run_id

from support.api import KEY, client, serve


@pytest.fixture
def server(namespace: str) -> Iterator[ServerThread]:
    with serve(api_keys=(KEY, "second-key-abcdef")) as srv:
        yield srv


def _run(server: ServerThread) -> str:
    with client(server) as c:
        return str(c.post("/workflows/api_add/start", json={"a": 1}).json()["run_id"])


def test_missing_or_wrong_key_is_401(server: ServerThread) -> None:
    with client(server, key=None) as anon, client(server, key="wrong") as wrong:
        for c in (anon, wrong):
            for method, path in [
                ("GET", "/workflows"),
                ("GET", "/runs"),
                ("POST", "/workflows/api_add/start"),
                ("GET", "/runs/abc"),
            ]:
                r = c.request(method, path, json={"a": 1} if method == "POST" else None)
                assert r.status_code == 401, (path, r.text)
                assert r.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in anon.get("/runs").json()["message"]
        assert wrong.get("/runs").json()["error"] == "wrong_key"


def test_any_configured_key_works_and_health_and_docs_are_open(server: ServerThread) -> None:
    with client(server, key="second-key-abcdef") as c:
        assert c.get("/runs").status_code == 200
    with client(server, key=None) as anon:
        assert anon.get("/healthz").status_code == 200
        assert anon.get("/openapi.json").status_code == 200


def test_keys_from_the_environment_and_a_file(
    namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys"
    path.write_text("# team keys\nfile-key-1\n\nfile-key-2  # ci\n")
    monkeypatch.setenv("AIFLOW_API_KEYS", "env-key-1, env-key-2")
    monkeypatch.setenv("AIFLOW_API_KEYS_FILE", str(path))
    assert ApiConfig.from_env().api_keys == ("env-key-1", "env-key-2", "file-key-1", "file-key-2")
    with ServerThread(create_app()) as srv:
        for key, status in [("file-key-2", 200), ("env-key-1", 200), ("nope", 401)]:
            with client(srv, key=key) as c:
                assert c.get("/runs").status_code == status
    with pytest.raises(ConfigError, match="cannot read the API keys file"):
        read_keys(None, str(tmp_path / "missing"))


def test_no_key_means_loopback_only(namespace: str) -> None:
    app = create_app(api_keys=())
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0: no API key"):
        ServerThread(app, host="0.0.0.0")
    with ServerThread(app) as srv, client(srv, key=None) as c:
        assert c.get("/runs").status_code == 200  # loopback client, no key needed
    ServerThread(create_app(api_keys=(KEY,)), host="0.0.0.0")  # allowed with a key (not started)


def test_cli_refuses_a_public_address_without_keys(namespace: str) -> None:
    from click.testing import CliRunner

    from aiflow_nb.cli import cli

    result = CliRunner().invoke(cli, ["api", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1 and "refusing to listen on 0.0.0.0" in result.output


def test_scoped_token_reads_only_its_run(server: ServerThread) -> None:
    ensure_local_worker(force=True)
    mine, other = _run(server), _run(server)
    with client(server) as c:
        tok = c.post(f"/runs/{mine}/token", params={"ttl": 60}).json()
    assert tok["run_id"] == mine and tok["expires_at"] > time.time() + 50
    with client(server, key=tok["token"]) as t:
        assert t.get(f"/runs/{mine}").json()["run_id"] == mine
        assert t.get(f"/runs/{mine}/output", params={"wait": 10}).json()["output"] == 2
        assert "run.completed" in t.get(f"/runs/{mine}/events").text
        for path in (f"/runs/{other}", f"/runs/{other}/events", f"/runs/{other}/output"):
            r = t.get(path)
            assert r.status_code == 403 and r.json()["error"] == "wrong_run", path
        for method, path in [
            ("GET", "/runs"),
            ("POST", f"/runs/{mine}/cancel"),
            ("POST", f"/runs/{mine}/token"),
            ("GET", "/workflows"),
        ]:
            assert t.request(method, path).status_code == 403, path
    with client(server, key=None) as browser:  # EventSource cannot send headers: ?token=
        r = browser.get(f"/runs/{mine}/events", params={"token": tok["token"]})
        assert r.status_code == 200 and "run.completed" in r.text
        assert browser.get(f"/runs/{mine}", params={"token": KEY}).status_code == 401


def test_expired_tampered_or_foreign_tokens_are_401(server: ServerThread) -> None:
    run_id = _run(server)
    key = server.server.config.app.state.api_config.signing_key
    expired, _ = issue_token(key, run_id, ttl=1, now=time.time() - 10)
    foreign, _ = issue_token(b"another server's key", run_id, ttl=60)
    good, _ = issue_token(key, run_id, ttl=60)
    body, mac = good.removeprefix("rt1.").split(".")
    tampered = f"rt1.{body[:-2]}AA.{mac}"
    for token, why in [
        (expired, "expired"),
        (foreign, "signature"),
        (tampered, ""),
        ("rt1.garbage", "malformed"),
    ]:
        with client(server, key=token) as c:
            r = c.get(f"/runs/{run_id}")
            assert r.status_code == 401 and why in r.json()["message"], r.text
    with client(server, key=good) as c:
        assert c.get(f"/runs/{run_id}").status_code == 200


def test_token_verification_without_a_server() -> None:
    token, _ = issue_token(b"k", "run-a", ttl=10, now=1000.0)
    verify_token(b"k", token, "run-a", now=1005.0)
    with pytest.raises(ApiError) as other:
        verify_token(b"k", token, "run-b", now=1005.0)
    assert other.value.status == 403
    with pytest.raises(ApiError, match="expired"):
        verify_token(b"k", token, "run-a", now=1011.0)


def test_tokens_signed_with_aiflow_secret_work_across_servers(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIFLOW_SECRET", "shared-secret-for-tests")
    import aiflow_nb

    aiflow_nb.configure()
    with serve(api_keys=(KEY,)) as one, serve(api_keys=(KEY,)) as two:
        run_id = _run(one)
        with client(one) as c:
            token = c.post(f"/runs/{run_id}/token").json()["token"]
        with client(two, key=token) as t:
            assert t.get(f"/runs/{run_id}").status_code == 200


def test_run_ids_are_unguessable(server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[int | None, str]] = []
    token_hex = secrets.token_hex

    def spy(nbytes: int | None = None) -> str:
        drawn.append((nbytes, token_hex(nbytes)))
        return drawn[-1][1]

    monkeypatch.setattr(secrets, "token_hex", spy)
    ids = [_run(server) for _ in range(20)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids), ids  # 96 bits, hex
    assert len(set(ids)) == 20
    # the CSPRNG's: 10 bytes after the 4 digits that name the partition (new_run_id)
    assert {i[4:] for i in ids} <= {value for n, value in drawn if n == 10}
    # neither a counter nor a clock: ids made one after another share no long prefix
    assert max(len(os.path.commonprefix(pair)) for pair in combinations(ids, 2)) < 8
    # and no bit is fixed: over 2,000 ids each of the 96 bits is set about half the time
    # (binomial sd 22; a bound 9 sd away never fails by chance)
    many = [int(new_run_id(), 16) for _ in range(2000)]
    assert len(set(many)) == len(many)
    counts = [sum(v >> bit & 1 for v in many) for bit in range(96)]
    assert all(800 < n < 1200 for n in counts), counts


def test_cors_only_for_configured_origins(namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFLOW_API_CORS_ORIGINS", "http://app.example")
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization, Last-Event-ID",
    }
    with serve(api_keys=(KEY,)) as srv, client(srv) as c:
        ok = c.options("/runs", headers={"Origin": "http://app.example", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://app.example"
        other = c.options("/runs", headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
        r = c.get("/runs", headers={"Origin": "http://app.example"})
        assert "Location" in r.headers["access-control-expose-headers"]
