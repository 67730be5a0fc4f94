"""Who may call what: API keys for everything, scoped tokens for reading one run.

- With keys configured: ``Authorization: Bearer KEY`` on every call but ``/healthz`` and
  the docs; missing or wrong gives 401.
- With no key configured: every call is allowed, from loopback clients only.
- A scoped run token (``POST /runs/{id}/token``) may be sent as ``Bearer`` or, because a
  browser ``EventSource`` cannot set headers, as ``?token=``. It reads that one run's
  status, events and output, nothing else; one with the ``respond`` scope also answers
  that run's waits (``require_run_responder``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .config import ApiConfig, is_loopback
from .errors import ApiError
from .tokens import RESPOND, looks_like_token, verify_token

__all__ = [
    "Bearer",
    "api_config",
    "bearer",
    "key_id",
    "require_key",
    "require_run_reader",
    "require_run_responder",
]

bearer = HTTPBearer(
    auto_error=False,
    description="An API key, or a scoped run token (read endpoints of that one run only).",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def api_config(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.api_config
    return config


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, {"WWW-Authenticate": "Bearer"})


def _check_key(request: Request, credential: str | None) -> None:
    config = api_config(request)
    if config.open:
        host = request.client.host if request.client else None
        if not is_loopback(host):
            raise ApiError(
                403,
                "loopback_only",
                "this server has no API key configured and "
                "only answers clients on the same machine",
            )
        return
    if not credential:
        raise _unauthorized(
            "missing_key", "this API needs a key: send the header 'Authorization: Bearer <key>'"
        )
    if looks_like_token(credential):
        raise ApiError(
            403,
            "token_scope",
            "a run token can only read its own run's status, "
            "events and output; this call needs an API key",
        )
    given = credential.encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in config.api_keys):
        raise _unauthorized("wrong_key", "the API key is not valid")


def _header_credential(creds: HTTPAuthorizationCredentials | None) -> str | None:
    return creds.credentials.strip() if creds is not None else None


def require_key(request: Request, creds: Bearer) -> None:
    """Dependency: an API key (or an open, loopback-only server)."""
    _check_key(request, _header_credential(creds))


def require_run_reader(
    request: Request,
    run_id: str,
    creds: Bearer,
    token: str | None = Query(
        None,
        description="A scoped run token (for EventSource, which cannot send headers).",
        max_length=1000,
    ),
) -> None:
    """Dependency: an API key, or a scoped token for ``run_id``."""
    credential = _header_credential(creds) or token
    if credential and looks_like_token(credential):
        verify_token(api_config(request).signing_key, credential, run_id)
        return
    _check_key(request, _header_credential(creds))  # API keys only in the header, never a URL


def key_id(key: str) -> str:
    """A name for an API key that gives nothing of it away (``key:`` + 8 hex digits of
    its SHA-256): who answered a wait, as ``input.received`` records it."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def require_run_responder(
    request: Request,
    run_id: str,
    creds: Bearer,
    token: str | None = Query(
        None, description="A run token with the respond scope.", max_length=1000
    ),
) -> str:
    """Dependency: an API key, or a run token for ``run_id`` with the ``respond`` scope;
    returns who answers (``key:<id>``, ``token``, or ``loopback`` on an open server)."""
    credential = _header_credential(creds) or token
    if credential and looks_like_token(credential):
        verify_token(api_config(request).signing_key, credential, run_id, scope=RESPOND)
        return "token"
    header = _header_credential(creds)
    _check_key(request, header)
    return key_id(header) if header and not api_config(request).open else "loopback"
