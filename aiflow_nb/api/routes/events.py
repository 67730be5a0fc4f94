"""``GET /runs/{id}/events``: the run's events as SSE (default) or NDJSON, resumable."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from ... import keys
from ...events.status import TERMINAL
from .. import records
from ..auth import api_config, require_run_reader
from ..pool import api_redis
from ..streams import MEDIA, SSE_HEADERS, event_stream, negotiate, parse_event_id
from .runs import RUN_ID

__all__ = ["events", "router"]

router = APIRouter(tags=["runs"])


async def _nothing_left(rec: dict[str, Any], after: str) -> bool:
    """The run (decoded record ``rec``) ended and no event follows ``after``: a
    reconnecting client is done."""
    if rec["status"] not in TERMINAL:
        return False
    r: Any = api_redis()
    return not await r.xrange(keys.run_events(rec["run_id"]), min=f"({after}", max="+", count=1)


@router.get(
    "/runs/{run_id}/events",
    dependencies=[Depends(require_run_reader)],
    summary="Stream a run's events (SSE or NDJSON), resumable",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {MEDIA["sse"]: {}, MEDIA["ndjson"]: {}},
            "description": "the event stream; it ends after the terminal event",
        },
        204: {
            "description": "resumed after the run's last event: nothing more will "
            "come (tells EventSource to stop reconnecting)"
        },
    },
    description="Replays the run's events after `Last-Event-ID` (header, wins) or `?after=`, "
    "then follows live until the terminal event. SSE messages carry `id:` = event id, so a "
    "browser EventSource resumes by itself with no gap and no duplicate. Keep-alive "
    "comments (SSE) or blank lines (NDJSON) while idle.",
)
async def events(
    request: Request,
    run_id: str = RUN_ID,
    after: str | None = Query(None, max_length=45, description="resume after this event id"),
    format: Literal["sse", "ndjson"] | None = Query(
        None, description="instead of the Accept header"
    ),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=45),
) -> Response:
    config = api_config(request)
    start = parse_event_id(last_event_id, "Last-Event-ID") or parse_event_id(after, "after")
    rec = await records.afetch(run_id)  # 404 before the stream starts
    if start is not None and await _nothing_left(rec, start):
        return Response(status_code=204)
    fmt = negotiate(request.headers.get("accept"), format, "sse")
    redactor = records.redactor_for(request.app.state.redactor, rec)
    items = request.app.state.feeds.follow(run_id, start, keepalive=config.keepalive)
    stream = event_stream(items, run_id, fmt, redactor, config.sse_retry_ms)
    return StreamingResponse(stream, media_type=MEDIA[fmt], headers=SSE_HEADERS)
