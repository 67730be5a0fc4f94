"""Workflows: list, describe, start (async, 202) and run (waits, or streams events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ... import defaults
from ...events.status import TERMINAL
from ...ops.submit import submit
from .. import catalog, records
from ..auth import api_config, require_key
from ..bodies import parse_body
from ..openapi import json_body
from ..responses import JSONBody
from ..schemas import RunAccepted, RunResult, WorkflowDetail, WorkflowList
from ..streams import MEDIA, SSE_HEADERS, event_stream, negotiate

__all__ = [
    "BODY_DOC",
    "IDEMPOTENCY",
    "get_workflow",
    "list_workflows",
    "location",
    "router",
    "run",
    "start",
]

router = APIRouter(tags=["workflows"], dependencies=[Depends(require_key)])

BODY_DOC = json_body(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "the workflow's inputs by name (see GET /workflows/{name})",
    }
)
IDEMPOTENCY = Header(
    None,
    alias="Idempotency-Key",
    min_length=1,
    max_length=200,
    description="Same key (for the same workflow) -> the same run, for 24 h",
)


@router.get("/workflows", response_model=WorkflowList, summary="List the workflows")
def list_workflows() -> dict[str, Any]:
    return {"workflows": [catalog.describe(e, detail=False) for e in catalog.entries()]}


@router.get(
    "/workflows/{name}",
    response_model=WorkflowDetail,
    summary="A workflow's input and output JSON Schema",
)
def get_workflow(name: str) -> dict[str, Any]:
    return catalog.describe(catalog.get(name))


def location(request: Request, run_id: str) -> str:
    """The run's URL path, under the prefix the app is mounted at (if any)."""
    return f"{request.scope.get('root_path', '')}/runs/{run_id}"


async def _inputs(request: Request, entry: catalog.Entry) -> dict[str, Any]:
    body = await request.body()
    raw: Any = parse_body(body) if body.strip() else {}
    return catalog.validate_inputs(entry, raw)


async def _submit(request: Request, name: str, key: str | None) -> str:
    entry = await run_in_threadpool(catalog.get, name)
    inputs = await _inputs(request, entry)
    name = entry.name
    run_id: str = await run_in_threadpool(
        lambda: submit(
            name,
            inputs,
            idempotency_key=f"{name}:{key}" if key else None,
            secret_args=entry.secret_args,
            code=entry.code_bundle,
            retention=entry.retention,
        )
    )
    return run_id


@router.post(
    "/workflows/{name}/start",
    status_code=202,
    response_model=RunAccepted,
    summary="Start a run (asynchronous)",
    openapi_extra=BODY_DOC,
    description="Queues a run and answers at once: 202 with the run id and a "
    "Location header (GET it for the status).",
)
async def start(
    request: Request, response: Response, name: str, idempotency_key: str | None = IDEMPOTENCY
) -> dict[str, Any]:
    run_id = await _submit(request, name, idempotency_key)
    status = (await records.afetch(run_id))["status"]
    response.headers["Location"] = location(request, run_id)
    return {"run_id": run_id, "status": status}


@router.post(
    "/workflows/{name}/run",
    response_model=RunResult,
    openapi_extra=BODY_DOC,
    summary="Run and wait for the output (or stream the events)",
    responses={
        202: {
            "model": RunResult,
            "description": "still running after `wait` seconds; follow the Location",
        },
        200: {"content": {MEDIA["sse"]: {}, MEDIA["ndjson"]: {}}},
    },
    description="Waits for the run and returns its output. With `Accept: "
    "text/event-stream` or `application/x-ndjson` it streams the run's events and "
    "ends with a `{type: result, ...}` message.",
)
async def run(
    request: Request,
    name: str,
    wait: float | None = Query(
        None, ge=0, le=defaults.API_MAX_WAIT, description="seconds to wait before answering 202"
    ),
    idempotency_key: str | None = IDEMPOTENCY,
) -> Response:
    config = api_config(request)
    fmt = negotiate(request.headers.get("accept"), None, "json")
    run_id = await _submit(request, name, idempotency_key)
    headers = {"Location": location(request, run_id), "X-Run-Id": run_id}
    redactor = request.app.state.redactor
    if fmt != "json":

        async def final() -> dict[str, Any]:
            return {"type": "result", **records.result(await records.afetch(run_id), redactor)}

        per_run = records.redactor_for(redactor, await records.afetch(run_id))
        items = request.app.state.feeds.follow(run_id, keepalive=config.keepalive)
        stream = event_stream(items, run_id, fmt, per_run, config.sse_retry_ms, final)
        return StreamingResponse(stream, media_type=MEDIA[fmt], headers={**SSE_HEADERS, **headers})
    status = await records.await_end(
        run_id, config.run_wait if wait is None else wait, request.is_disconnected
    )
    doc = records.result(await records.afetch(run_id), redactor)
    return JSONBody(doc, status_code=200 if status in TERMINAL else 202, headers=headers)
