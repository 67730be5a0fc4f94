"""Every error the API answers is JSON a person can read: ``{error, message, status}``
(plus ``fields`` for a 422: the first ``API_MAX_FIELD_ERRORS``, and ``more_fields``
counting the rest). This module defines ``ApiError`` (a refusal of the REST layer's own)
and maps it, the core's errors (``aiflow_nb.errors``), Redis's and any other exception to
those answers: Redis unreachable or refusing for now (out of memory, read-only, loading)
is 503 with ``Retry-After``, another Redis error reply 502 ``redis_error``, anything
unexpected 500 ``internal_error`` (logged with its traceback)."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import defaults
from ..errors import (
    AiflowError,
    AlreadyAnswered,
    CodeRejected,
    InvalidInputs,
    RedisUnavailable,
    RunNotFound,
    RunStateError,
    SerializationError,
    ValueTooLarge,
    WaitNotFound,
    WorkflowNotFound,
)
from ..store.failures import CLUSTER_ERRORS
from .responses import JSONBody

__all__ = [
    "COMMON_RESPONSES",
    "ApiError",
    "CatchAll",
    "ErrorBody",
    "FieldError",
    "error_response",
    "install_error_handlers",
    "validation_error",
]

log = logging.getLogger("aiflow_nb.api")


class ApiError(AiflowError):
    """A request the REST API refuses; ``status`` is the HTTP status, ``code`` a short tag,
    ``headers`` go on the answer (e.g. ``WWW-Authenticate``), ``fields`` on a 422."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        fields: list[dict[str, str]] | None = None,
        more_fields: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.fields = fields
        self.more_fields = more_fields


class FieldError(BaseModel):
    """One field that failed validation."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    message: str
    status: int
    fields: list[FieldError] | None = None
    more_fields: int | None = None
    """Field errors past the first ``API_MAX_FIELD_ERRORS`` (listed) that were left out."""


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("Malformed request (e.g. a body that is not JSON)"),
    401: _doc("Missing or wrong API key or run token"),
    403: _doc("Credential valid but not for this (e.g. a run token for another run)"),
    404: _doc("No such workflow, run or path"),
    413: _doc("Request body over the size limit"),
    422: _doc("Input that does not fit (the fields are named)"),
    500: _doc("An unexpected error of the server (logged there)"),
    502: _doc("Redis answered a command with an error"),
    503: _doc("Redis unreachable or refusing writes; retry after Retry-After seconds"),
}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    more_fields: int = 0,
) -> JSONBody:
    body: dict[str, Any] = {"error": code, "message": message, "status": status}
    if fields is not None:
        body["fields"] = fields
    if more_fields:
        body["more_fields"] = more_fields
    return JSONBody(body, status_code=status, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def validation_error(errors: list[Any], what: str) -> ApiError:
    """An ``ApiError`` 422 naming the fields pydantic rejected: the first
    ``API_MAX_FIELD_ERRORS`` in ``fields``, the number of the others in ``more_fields``."""
    cap = defaults.API_MAX_FIELD_ERRORS
    fields = [
        {"field": _loc(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in errors[:cap]
    ]
    more = max(0, len(errors) - cap)
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    if len(errors) > 5:
        summary += f" (and {len(errors) - 5} more)"
    return ApiError(422, "invalid_input", f"{what}: {summary}", fields=fields, more_fields=more)


def _on_api_error(_: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.code, exc.message, exc.fields, exc.headers, exc.more_fields
    )


def _on_request_validation(_: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    err = validation_error(errors, "invalid request")
    return error_response(422, err.code, err.message, err.fields, more_fields=err.more_fields)


def _on_http(_: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else "request refused"
    if exc.status_code == 404 and message == "Not Found":
        message = "no such path; see /docs for the endpoints"
    return error_response(
        exc.status_code, code, message, headers=dict(exc.headers) if exc.headers else None
    )


def _unavailable(message: str) -> JSONBody:
    return error_response(
        503, "redis_unavailable", message, headers={"Retry-After": str(defaults.API_RETRY_AFTER)}
    )


def _on_aiflow(_: Request, exc: Exception) -> JSONBody:
    if isinstance(exc, RedisUnavailable):
        return _unavailable(str(exc))
    mapping: list[tuple[type[Exception], int, str]] = [
        (WorkflowNotFound, 404, "workflow_not_found"),
        (RunNotFound, 404, "run_not_found"),
        (WaitNotFound, 404, "wait_not_found"),
        (InvalidInputs, 422, "invalid_input"),
        (SerializationError, 422, "not_serialisable"),
        (ValueTooLarge, 413, "value_too_large"),
        (AlreadyAnswered, 409, "already_answered"),
        (RunStateError, 409, "conflict"),
        (CodeRejected, 409, "code_rejected"),
    ]
    for kind, status, code in mapping:
        if isinstance(exc, kind):
            fields = exc.fields if isinstance(exc, InvalidInputs) else None
            return error_response(status, code, str(exc), fields)
    log.error("unexpected aiflow error: %s", exc)
    return error_response(500, "internal_error", str(exc))


def _on_redis(_: Request, exc: Exception) -> JSONBody:
    return _unavailable(
        f"Redis is unreachable ({exc}); the API cannot read or queue runs until it is back"
    )


_FOR_NOW = (redis.OutOfMemoryError, redis.ReadOnlyError, redis.BusyLoadingError)
_FOR_NOW_PREFIXES = ("BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
"""Error replies of a Redis that is fine but refuses for now (redis-py maps some to
classes and strips their prefix, keeps the others' text): 503, retry later."""


def _on_redis_reply(_: Request, exc: Exception) -> JSONBody:
    """A Redis error reply (``redis.ResponseError`` and the rest of ``RedisError``)."""
    reply = str(exc) or type(exc).__name__
    if isinstance(exc, _FOR_NOW) or reply.startswith(_FOR_NOW_PREFIXES):
        return _unavailable(f"Redis refuses the command for now ({reply}); retry later")
    log.error("Redis answered an API command with an error: %s", reply, exc_info=exc)
    return error_response(
        502, "redis_error", f"Redis answered with an error ({reply}); the request was not served"
    )


def _on_unexpected(_: Request | None, exc: Exception) -> JSONBody:
    """Anything else: the error document, not a bare 500."""
    return error_response(
        500,
        "internal_error",
        f"the server failed on this request ({type(exc).__name__}); it is logged there",
    )


class CatchAll:
    """ASGI middleware: an exception no handler took becomes the 500 error document,
    logged with its traceback, and the connection stays usable (past starlette's
    ``ServerErrorMiddleware`` uvicorn would close it). Once a response has started (a
    stream), the exception goes on up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
            await _on_unexpected(None, exc)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error answers on ``app``."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(AiflowError, _on_aiflow)
    app.add_exception_handler(redis.ConnectionError, _on_redis)
    app.add_exception_handler(redis.TimeoutError, _on_redis)
    for kind in CLUSTER_ERRORS:  # a cluster (or a slot's master) down, resharding: 503
        app.add_exception_handler(kind, _on_redis)
    app.add_exception_handler(redis.RedisError, _on_redis_reply)
    app.add_exception_handler(Exception, _on_unexpected)  # outside CatchAll (middleware)
