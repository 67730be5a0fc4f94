"""Rerunning a finished run: ``POST /runs/{id}/rerun`` (``ops/fork.py``'s write)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from ...errors import WorkflowNotFound
from ...ops.fork import fork
from .. import catalog, records
from ..auth import require_key
from ..bodies import parse_body
from ..errors import ApiError, ErrorBody
from ..openapi import json_body
from ..schemas import RunView
from .runs import RUN_ID
from .workflows import location

__all__ = ["MAX_STEPS", "RERUN_DOC", "rerun", "rerun_request", "router"]

router = APIRouter(tags=["runs"])

MAX_STEPS = 1000
"""Most step names a rerun request may list."""

RERUN_DOC = json_body(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": "object",
                "description": "inputs that replace the source run's (by name)",
            },
            "steps": {
                "type": "array",
                "maxItems": MAX_STEPS,
                "items": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": "component names or step keys that execute even though "
                "the source run's journal holds them",
            },
        },
    }
)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "invalid_input", f"{field}: {message}", fields=[{"field": field, "message": message}]
    )


def rerun_request(body: bytes) -> tuple[dict[str, Any] | None, list[str] | None]:
    """The ``inputs`` and ``steps`` of a rerun request body (empty: neither);
    ``ApiError`` 400/422 for anything else."""
    raw: Any = parse_body(body) if body.strip() else {}
    if not isinstance(raw, dict):
        raise _invalid("body", f"must be a JSON object, got {type(raw).__name__}")
    extra = sorted(set(raw) - {"inputs", "steps"})
    if extra:
        raise _invalid(f"body.{extra[0]}", "unknown field (a rerun takes inputs and steps)")
    inputs, steps = raw.get("inputs"), raw.get("steps")
    if inputs is not None and not isinstance(inputs, dict):
        raise _invalid("body.inputs", f"must be an object, got {type(inputs).__name__}")
    if steps is not None:
        if not isinstance(steps, list):
            raise _invalid("body.steps", f"must be a list of strings, got {type(steps).__name__}")
        if len(steps) > MAX_STEPS:
            raise _invalid("body.steps", f"at most {MAX_STEPS} steps, got {len(steps)}")
        for i, step in enumerate(steps):
            if not isinstance(step, str) or not 1 <= len(step) <= 200:
                raise _invalid(f"body.steps.{i}", "must be a step name of 1 to 200 characters")
    return inputs, steps


def _checked_inputs(run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The source's inputs updated by ``inputs``, validated like a start's body when this
    API serves the workflow (422 naming each bad field); ``RunNotFound`` (404)."""
    rec = records.fetch(run_id)
    try:
        entry = catalog.get(rec.get("workflow") or "")
    except WorkflowNotFound:  # a workflow only its workers know: they check the inputs
        return inputs
    source = rec.get("inputs")
    return catalog.validate_inputs(
        entry, {**(source if isinstance(source, dict) else {}), **inputs}
    )


@router.post(
    "/runs/{run_id}/rerun",
    status_code=202,
    response_model=RunView,
    dependencies=[Depends(require_key)],
    summary="Rerun a finished run: replay what is still valid, execute what changed",
    description="Queues a new run of the source run's workflow (current code), its "
    "inputs the source's updated by `inputs`; steps named in `steps` execute, the rest "
    "replay from the source's journal unless their code or arguments changed. 202 with "
    "the new run's document (`forked_from`: the source) and its Location. Same auth as "
    "starting a run. 404 unknown run; 409 a source not finished; 422 an unknown step.",
    responses={409: {"model": ErrorBody, "description": "The source run has not finished"}},
    openapi_extra=RERUN_DOC,
)
async def rerun(request: Request, response: Response, run_id: str = RUN_ID) -> dict[str, Any]:
    inputs, steps = rerun_request(await request.body())
    if inputs:
        inputs = await run_in_threadpool(_checked_inputs, run_id, inputs)
    new_id: str = await run_in_threadpool(fork, run_id, inputs, steps)
    response.headers["Location"] = location(request, new_id)
    return records.view(await records.afetch(new_id), request.app.state.redactor)
