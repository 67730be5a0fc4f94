"""What one API server is configured with: keys, token signing key, limits, timings.

Keys come from ``AIFLOW_API_KEYS`` (comma- or whitespace-separated) and/or the file
named by ``AIFLOW_API_KEYS_FILE`` (one key a line, ``#`` comments). Scoped tokens are
signed with ``AIFLOW_SECRET``; without it, with a random key made for this process (so
tokens do not outlive the process nor work on another API process).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from .. import defaults
from ..config import settings
from ..errors import ConfigError

__all__ = ["ApiConfig", "check_bind", "is_loopback", "read_keys"]

log = logging.getLogger("aiflow_nb.api")


def read_keys(env: str | None = None, path: str | None = None) -> tuple[str, ...]:
    """API keys from a separated string and/or a file of keys (one a line)."""
    found = [k for k in (env or "").replace(",", " ").split() if k]
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the API keys file {path}: {exc}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(line)
    return tuple(dict.fromkeys(found))


def _signing_key() -> tuple[bytes, bool]:
    secret = settings().secret
    if secret:
        return secret.encode(), False
    return secrets.token_bytes(32), True


@dataclass(frozen=True)
class ApiConfig:
    """Settings of one API server; ``ApiConfig.from_env()`` reads the environment."""

    api_keys: tuple[str, ...] = ()
    """Bearer keys accepted; empty means no key is needed (loopback clients only)."""
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    """HMAC key of scoped run tokens."""
    ephemeral_signing_key: bool = True
    """True when the signing key was made up for this process (no ``AIFLOW_SECRET``)."""
    max_body: int = defaults.API_MAX_BODY
    """Bytes; larger request bodies get 413."""
    keepalive: float = defaults.API_KEEPALIVE
    """Seconds of silence before an event stream sends a keep-alive comment."""
    sse_retry_ms: int = defaults.API_SSE_RETRY
    """The ``retry:`` an event stream tells browsers (milliseconds)."""
    run_wait: float = defaults.API_RUN_WAIT
    """Seconds ``POST .../run`` waits before answering 202 with the run still going."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (``AIFLOW_API_CORS_ORIGINS``); none: same
    origin only."""

    @classmethod
    def from_env(cls, **overrides: object) -> ApiConfig:
        keys = read_keys(os.environ.get("AIFLOW_API_KEYS"), os.environ.get("AIFLOW_API_KEYS_FILE"))
        key, ephemeral = _signing_key()
        if ephemeral:
            log.warning(
                "AIFLOW_SECRET is not set: scoped run tokens are signed with a random "
                "key of this process and stop working when it exits"
            )
        origins = tuple(
            o for o in os.environ.get("AIFLOW_API_CORS_ORIGINS", "").replace(",", " ").split() if o
        )
        base = cls(
            api_keys=keys, signing_key=key, ephemeral_signing_key=ephemeral, cors_origins=origins
        )
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown API option(s) {sorted(unknown)}")
        return cls(**{**base.__dict__, **overrides})

    @property
    def open(self) -> bool:
        """No key configured: every loopback client may do everything."""
        return not self.api_keys


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1, ``localhost`` and unix sockets."""
    if not host:
        return True  # unix socket or an in-process transport
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, config: ApiConfig) -> None:
    """Refuse a non-loopback address when no API key is configured."""
    if config.open and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host}: no API key is configured, so anyone who can "
            "reach that address could start and read runs. Set AIFLOW_API_KEYS (or "
            "AIFLOW_API_KEYS_FILE), or bind to 127.0.0.1."
        )
