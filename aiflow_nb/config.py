"""Settings from the environment, each also settable in code with ``configure()``.

Example::

    import aiflow_nb
    aiflow_nb.configure(namespace="myproject", redis_url="redis://localhost:6379/0")

The namespace can also be overridden for one context (e.g. a dashboard session reading
another namespace): ``with use_namespace("other"): ...``; ``keys`` builds
every key in ``namespace()``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Any

from . import defaults
from .errors import ConfigError

__all__ = ["Settings", "configure", "namespace", "parse_duration", "settings", "use_namespace"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | float, what: str) -> float:
    """``3600``, ``"90"``, ``"1.5s"``, ``"10m"``, ``"12h"``, ``"7d"`` -> seconds (> 0);
    ``ConfigError`` naming ``what`` otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(
            f"{what} must be a positive duration like 3600, 90s, 10m, 12h or 7d; got {value!r}"
        )
    return seconds


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number of bytes") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value


def _partitions(value: object, what: str) -> int:
    """A partition count: a whole number from 1 to ``MAX_PARTITIONS``, else ``ConfigError``."""
    try:
        count = int(str(value).strip()) if not isinstance(value, bool) else 0
    except ValueError:
        count = 0
    if not 1 <= count <= defaults.MAX_PARTITIONS:
        raise ConfigError(
            f"{what} must be a whole number from 1 to {defaults.MAX_PARTITIONS}; got {value!r}"
        )
    return count


def _env_duration(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return parse_duration(raw, name)


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected 0, 1 or auto")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; read them with ``aiflow_nb.config.settings()``."""

    redis_url: str | None = None
    """``REDIS_URL``; None means the embedded Redis."""
    namespace: str = defaults.NAMESPACE
    """``AIFLOW_NAMESPACE``."""
    local_worker: bool | None = None
    """``AIFLOW_LOCAL_WORKER``: True forces, False forbids, None = when no worker is live."""
    version: str | None = None
    """``AIFLOW_VERSION``; None means the active deployment."""
    secret: str | None = None
    """``AIFLOW_SECRET``: signs registered code and scoped tokens."""
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL
    """``AIFLOW_HEARTBEAT_INTERVAL``, seconds."""
    heartbeat_ttl: float = defaults.HEARTBEAT_TTL
    """``AIFLOW_HEARTBEAT_TTL``, seconds."""
    notify_url: str | None = None
    """``AIFLOW_NOTIFY_URL``."""
    retention: float = defaults.RETENTION
    """``AIFLOW_RETENTION``, seconds (``3600``, ``90s``, ``12h``, ``7d``): how long a finished
    run is kept after it ends."""
    code_worker: bool | None = None
    """``AIFLOW_CODE_WORKER``: whether ``%load_ext aiflow_nb`` starts this machine's
    background worker for registered notebook code (``ops/daemon.py``); None = yes."""
    max_value_bytes: int = defaults.MAX_VALUE_BYTES
    """``AIFLOW_MAX_VALUE_BYTES``: the largest input, output or step result, bytes of JSON."""
    partitions: int = defaults.PARTITIONS
    """``AIFLOW_PARTITIONS``: partitions of a new namespace (``keys.py``); a namespace's
    count is fixed by the first process that uses it (stored in Redis; that one wins)."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            redis_url=os.environ.get("REDIS_URL") or None,
            namespace=os.environ.get("AIFLOW_NAMESPACE") or defaults.NAMESPACE,
            local_worker=_env_bool("AIFLOW_LOCAL_WORKER"),
            version=os.environ.get("AIFLOW_VERSION") or None,
            secret=os.environ.get("AIFLOW_SECRET") or None,
            heartbeat_interval=_env_float("AIFLOW_HEARTBEAT_INTERVAL", defaults.HEARTBEAT_INTERVAL),
            heartbeat_ttl=_env_float("AIFLOW_HEARTBEAT_TTL", defaults.HEARTBEAT_TTL),
            notify_url=os.environ.get("AIFLOW_NOTIFY_URL") or None,
            retention=_env_duration("AIFLOW_RETENTION", defaults.RETENTION),
            code_worker=_env_bool("AIFLOW_CODE_WORKER"),
            max_value_bytes=_env_int("AIFLOW_MAX_VALUE_BYTES", defaults.MAX_VALUE_BYTES),
            partitions=_partitions(
                os.environ.get("AIFLOW_PARTITIONS") or defaults.PARTITIONS, "AIFLOW_PARTITIONS"
            ),
        )


_current: Settings | None = None


def settings() -> Settings:
    """The settings in force (read from the environment on first use)."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def configure(**changes: Any) -> Settings:
    """Override settings in code; ``configure()`` with no argument re-reads the environment."""
    global _current
    names = {f.name for f in fields(Settings)}
    unknown = set(changes) - names
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(names)}")
    if "retention" in changes:
        changes["retention"] = parse_duration(changes["retention"], "retention")
    if "partitions" in changes:
        changes["partitions"] = _partitions(changes["partitions"], "partitions")
    _current = replace(Settings.from_env() if not changes else settings(), **changes)
    from .store import connection

    connection.reset()
    return _current


_namespace: ContextVar[str | None] = ContextVar("aiflow_namespace", default=None)
"""This context's namespace override (``use_namespace``); None: ``settings().namespace``."""


def namespace() -> str:
    """The namespace keys are built in: this context's ``use_namespace``, else
    ``settings().namespace``."""
    return _namespace.get() or settings().namespace


@contextmanager
def use_namespace(name: str) -> Iterator[str]:
    """Build keys in namespace ``name`` inside the block, in this context only (a thread
    started inside does not inherit it: ``trace.Follower`` takes the namespace in force
    when it is made). Nests; leaves ``settings()`` as it is."""
    if not name:
        raise ConfigError("a namespace must not be empty")
    token = _namespace.set(name)
    try:
        yield name
    finally:
        _namespace.reset(token)
