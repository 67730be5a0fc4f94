"""Runs: list, read, wait for the output, cancel, hand out a scoped read token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from ... import defaults
from ...events.status import RECORDED, TERMINAL
from ...ops.retention import delete
from ...ops.submit import cancel
from .. import records
from ..auth import api_config, require_key, require_run_reader
from ..errors import ApiError, ErrorBody
from ..responses import JSONBody
from ..schemas import CancelOut, DeletedOut, RunPage, RunResult, RunView, TokenOut
from ..tokens import issue_token

__all__ = [
    "KEY",
    "READER",
    "RUN_ID",
    "cancel_run",
    "delete_run",
    "get_output",
    "get_run",
    "list_runs",
    "router",
    "run_token",
]

router = APIRouter(tags=["runs"])

RUN_ID = Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$", description="the run id")
KEY = [Depends(require_key)]
READER = [Depends(require_run_reader)]


@router.get("/runs", response_model=RunPage, dependencies=KEY, summary="List runs, newest first")
def list_runs(
    request: Request,
    workflow: str | None = Query(None, max_length=200),
    status: str | None = Query(None, max_length=40),
    limit: int = Query(defaults.API_PAGE_LIMIT, ge=1, le=1000),
    cursor: str | None = Query(
        None, max_length=200, description="next_cursor of the previous page"
    ),
) -> dict[str, Any]:
    if status is not None and status not in RECORDED:  # a typo would list nothing, silently
        raise ApiError(
            422,
            "invalid_input",
            f"status must be one of {', '.join(RECORDED)}; got {status!r}",
            fields=[{"field": "query.status", "message": f"not a run status: {status!r}"}],
        )
    rows, next_cursor = records.page(workflow, status, limit, cursor)
    return {
        "runs": records.views(rows, request.app.state.redactor, traceback=False),
        "next_cursor": next_cursor,
    }


@router.get(
    "/runs/{run_id}",
    response_model=RunView,
    dependencies=READER,
    summary="A run's status, timestamps, attempt, output or error",
)
def get_run(request: Request, run_id: str = RUN_ID) -> dict[str, Any]:
    return records.view(records.fetch(run_id), request.app.state.redactor)


@router.get(
    "/runs/{run_id}/output",
    response_model=RunResult,
    dependencies=READER,
    summary="A run's output, waiting up to `wait` seconds for it",
    responses={202: {"model": RunResult, "description": "not finished yet"}},
)
async def get_output(
    request: Request,
    run_id: str = RUN_ID,
    wait: float = Query(0, ge=0, le=defaults.API_MAX_WAIT, description="seconds to wait"),
) -> JSONBody:
    status = await records.await_end(run_id, wait, request.is_disconnected)
    doc = records.result(await records.afetch(run_id), request.app.state.redactor)
    return JSONBody(doc, status_code=200 if status in TERMINAL else 202)


@router.post(
    "/runs/{run_id}/cancel",
    response_model=CancelOut,
    dependencies=KEY,
    summary="Cancel a run (queued: at once; running: through its worker)",
)
async def cancel_run(run_id: str = RUN_ID) -> dict[str, Any]:
    return {"run_id": run_id, "status": await run_in_threadpool(cancel, run_id)}


@router.delete(
    "/runs/{run_id}",
    response_model=DeletedOut,
    dependencies=KEY,
    summary="Delete a finished run now (its record, events, journal and index entries)",
    description="API key only (a scoped run token gets 403). 404 for an unknown, expired "
    "or already deleted run; 409 for a run not finished (cancel it first).",
    responses={409: {"model": ErrorBody, "description": "The run has not finished"}},
)
async def delete_run(run_id: str = RUN_ID) -> dict[str, Any]:
    await run_in_threadpool(delete, run_id)
    return {"run_id": run_id, "deleted": True}


@router.post(
    "/runs/{run_id}/token",
    response_model=TokenOut,
    dependencies=KEY,
    summary="A signed, expiring token that reads only this run",
    description="For handing to a browser: it reads this run's status, events and "
    "output (`Authorization: Bearer` or `?token=`), nothing else; with `respond=true` it "
    "also answers the run's waits (`POST /runs/{id}/input/{name}`).",
)
def run_token(
    request: Request,
    run_id: str = RUN_ID,
    ttl: float = Query(
        defaults.API_TOKEN_TTL,
        gt=0,
        le=defaults.API_TOKEN_MAX_TTL,
        description="seconds the token lives",
    ),
    respond: bool = Query(
        False, description="the token may also answer the run's waits (the respond scope)"
    ),
) -> dict[str, Any]:
    records.fetch(run_id)  # 404 for an unknown run
    key = api_config(request).signing_key
    token, expires = issue_token(key, run_id, ttl, respond=respond)
    return {"run_id": run_id, "token": token, "expires_at": expires}
