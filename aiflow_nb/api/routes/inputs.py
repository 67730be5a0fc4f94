"""Answering a parked run: ``POST /runs/{id}/input/{name}`` (``ops/answer.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from ...ops.answer import respond
from ...runtime.waits import NAME_PATTERN
from ..auth import require_run_responder
from ..bodies import parse_body
from ..errors import ApiError
from ..openapi import json_body
from ..schemas import InputAccepted
from .runs import RUN_ID

__all__ = ["ANSWER_DOC", "WAIT_NAME", "answer", "router"]

router = APIRouter(tags=["runs"])

WAIT_NAME = Path(pattern=NAME_PATTERN, description="the wait's name (wait_for_input's)")

ANSWER_DOC = json_body(
    {
        "description": "the answer: any JSON value that fits the wait's schema "
        "(GET /runs/{id} lists the open waits with their schemas)"
    },
    required=True,
)


async def _value(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "missing_body", "the answer is the request body (JSON): it is empty")
    return parse_body(body)  # malformed 400; too deep or integers past 64 bits 422


@router.post(
    "/runs/{run_id}/input/{name}",
    response_model=InputAccepted,
    summary="Answer a run's wait_for_input: the run resumes",
    description="The body is the answer (JSON). It must fit the wait's JSON Schema (422 "
    "names the fields); only the first answer counts (409 after it); 404 when the run "
    "waits for no input of that name. An API key, or a run token with the respond scope "
    "(`POST /runs/{id}/token?respond=true`).",
    responses={
        404: {"description": "No such run, or no open wait of that name"},
        409: {"description": "The wait was answered (or timed out) already"},
    },
    openapi_extra=ANSWER_DOC,
)
async def answer(
    request: Request,
    run_id: str = RUN_ID,
    name: str = WAIT_NAME,
    by: str = Depends(require_run_responder),
) -> dict[str, Any]:
    value = await _value(request)
    await run_in_threadpool(respond, run_id, name, value, by=f"api {by}")
    return {"run_id": run_id, "name": name, "status": "queued"}
