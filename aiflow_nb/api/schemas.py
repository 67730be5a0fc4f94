"""Pydantic models of the API's answers (they make the OpenAPI spec)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "STATUS",
    "CancelOut",
    "DeletedOut",
    "Health",
    "InputAccepted",
    "RunAccepted",
    "RunError",
    "RunPage",
    "RunResult",
    "RunView",
    "TokenOut",
    "WaitView",
    "WorkflowDetail",
    "WorkflowList",
    "WorkflowSummary",
]

STATUS = (
    "queued, running, waiting (parked at a wait: see `waits`), completed, failed or "
    "cancelled (``cancelling`` while a running run is being stopped)"
)


class WorkflowSummary(BaseModel):
    name: str
    description: str = ""
    source: str = Field(
        description="'process' (imported code) or 'notebook' (registered from a notebook)"
    )


class WorkflowList(BaseModel):
    workflows: list[WorkflowSummary]


class WorkflowDetail(WorkflowSummary):
    input_schema: dict[str, Any] = Field(description="JSON Schema of the request body")
    output_schema: dict[str, Any] = Field(description="JSON Schema of the output ({} = any)")
    secret_args: list[str] = Field(description="inputs redacted in events and responses")


class RunError(BaseModel):
    type: str | None = None
    message: str | None = None
    cause: str | None = None
    traceback: str | None = None


class RunAccepted(BaseModel):
    run_id: str
    status: str = Field(description=STATUS)


class RunResult(BaseModel):
    run_id: str
    status: str = Field(description=STATUS)
    output: Any = Field(None, description="the workflow's return value once completed")
    error: RunError | None = None


class WaitView(BaseModel):
    """One open wait of a parked run."""

    name: str
    kind: str = Field(description="input (answer: POST /runs/{id}/input/{name}), event, sleep")
    prompt: str | None = None
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON Schema the answer must fit (null: any JSON)"
    )
    since: float | None = Field(None, description="unix seconds it was first reached")
    deadline: float | None = Field(None, description="unix seconds it times out (null: never)")


class InputAccepted(BaseModel):
    run_id: str
    name: str
    status: str = Field(description="queued: the answer is recorded and the run resumes")


class RunView(BaseModel):
    run_id: str
    workflow: str | None = None
    version: str | None = None
    status: str = Field(description=STATUS)
    attempt: int = 0
    restarts: int = 0
    created_at: float | None = Field(None, description="unix seconds")
    started_at: float | None = None
    ended_at: float | None = None
    inputs: dict[str, Any] | None = Field(None, description="secret inputs show as ***")
    output: Any = None
    error: RunError | None = None
    cancel_requested: bool = False
    waiting: str | None = Field(
        None, description="while queued: why no live worker takes the run, and what to do"
    )
    waits: list[WaitView] = Field(
        default_factory=list, description="while waiting: its open waits (prompt, schema)"
    )
    forked_from: str | None = Field(
        None, description="a rerun's source run id (its unchanged steps replay from it)"
    )


class RunPage(BaseModel):
    runs: list[RunView]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class CancelOut(BaseModel):
    run_id: str
    status: str = Field(description="cancelled, cancelling, or the status it already ended in")


class DeletedOut(BaseModel):
    run_id: str
    deleted: bool = Field(description="always true: the run's keys and index entries are gone")


class TokenOut(BaseModel):
    run_id: str
    token: str = Field(description="send as 'Authorization: Bearer TOKEN' or ?token=TOKEN")
    expires_at: float = Field(description="unix seconds")


class Health(BaseModel):
    status: str = Field(description="ok, or no_workers when no worker heartbeat is live")
    redis: str
    workers: int = Field(description="live workers (any version)")
