"""Scoped run tokens: HMAC-signed, expiring, good for reading one run only.

A token is ``base64url(payload) + "." + base64url(hmac_sha256(key, payload))`` where
the payload is ``{"r": run_id, "e": expiry (unix s), "s": scopes}``; ``s`` is ``"read"``,
or ``"read respond"`` for a token that may also answer the run's waits
(``POST /runs/{id}/input/{name}``). Hand one to a browser so it can follow one run
without holding an API key::

    token = issue_token(key, run_id, ttl=600)
    verify_token(key, token, run_id)   # raises ApiError(401) for any other run
    verify_token(key, token, run_id, scope="respond")   # 403 unless it may answer
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson

from .errors import ApiError

__all__ = ["RESPOND", "TOKEN_PREFIX", "issue_token", "looks_like_token", "verify_token"]

TOKEN_PREFIX = "rt1."
"""Marks a scoped run token, so it is never mistaken for an API key."""

RESPOND = "respond"
"""The scope that lets a token answer its run's waits (besides reading the run)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def issue_token(
    key: bytes, run_id: str, ttl: float, now: float | None = None, respond: bool = False
) -> tuple[str, float]:
    """A token reading only ``run_id`` (and, with ``respond``, answering its waits), valid
    ``ttl`` seconds; returns (token, expiry)."""
    expires = (time.time() if now is None else now) + ttl
    scopes = f"read {RESPOND}" if respond else "read"
    body = _b64(orjson.dumps({"r": run_id, "e": round(expires, 3), "s": scopes}))
    return f"{TOKEN_PREFIX}{body}.{_mac(key, body)}", expires


def looks_like_token(credential: str) -> bool:
    return credential.startswith(TOKEN_PREFIX)


def _invalid(why: str) -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        f"the run token is not valid: {why}",
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def verify_token(
    key: bytes, token: str, run_id: str, now: float | None = None, scope: str = "read"
) -> None:
    """Raise ``ApiError`` (401, or 403 for another run or a missing ``scope``) unless
    ``token`` may ``scope`` (read, respond) ``run_id``."""
    try:
        body, mac = token.removeprefix(TOKEN_PREFIX).split(".")
        if not (body.isascii() and mac.isascii()):  # base64url only; compare_digest needs it
            raise ValueError("not base64url")
        payload = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        raise _invalid("it is malformed") from None
    if not hmac.compare_digest(mac.encode(), _mac(key, body).encode()):
        raise _invalid("its signature does not match (tampered, or signed by another server)")
    scopes = str(payload.get("s", "")).split() if isinstance(payload, dict) else []
    if "read" not in scopes:
        raise _invalid("it carries no read scope")
    expires = payload.get("e")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise _invalid("it carries no expiry")
    if expires < (time.time() if now is None else now):
        raise _invalid("it has expired; ask for a new one with POST /runs/{id}/token")
    if payload.get("r") != run_id:
        raise ApiError(
            403,
            "wrong_run",
            "this run token is for another run; it can only read the run it was issued for",
        )
    if scope not in scopes:
        raise ApiError(
            403,
            "token_scope",
            f"this run token has no {scope!r} scope (ask for one with "
            "POST /runs/{id}/token?respond=true)",
        )
