"""Core commands: demo, redis, runs, attach, resume, cancel."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

import click

from ..access.runs import RUN_COLUMNS
from ..errors import AiflowError, RunStateError
from ..events.status import RECORDED, TERMINAL, RunStatus
from . import exits
from .output import json_option, print_json, table

if TYPE_CHECKING:
    from ..access.handle import RunHandle

__all__ = [
    "RUN_FIELDS",
    "attach",
    "cancel",
    "demo",
    "fail",
    "redis",
    "register",
    "resume",
    "runs_cmd",
    "status",
    "stop",
]


def fail(exc: Exception) -> NoReturn:
    """Print an error a person understands and exit 1 (``exits.ERROR``)."""
    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(exits.ERROR)


@click.command()
@click.option("--topic", default="durable LLM workflows", show_default=True)
@click.option("--sections", default=3, show_default=True, help="Sections the post gets.")
@click.option(
    "--approve",
    is_flag=True,
    help="Park the run after its outline until you approve it here (without a terminal, "
    "the demo approves by itself and says so).",
)
def demo(topic: str, sections: int, approve: bool) -> None:
    """Run the content agent (research, outline, streamed sections) on the local LLM server
    (or the real provider when OPENAI_API_KEY is set), printing its live events."""
    from ..examples.llm_demo import run_content_demo, terminal_approver

    try:
        run_content_demo(
            topic, sections, approve=approve, ask=terminal_approver() if approve else None
        )
    except AiflowError as exc:
        fail(exc)


@click.group()
def redis() -> None:
    """Manage the embedded Redis."""


@redis.command()
def status() -> None:
    """Say which Redis is in use and whether the embedded one runs."""
    from ..config import settings
    from ..redaction import shown_url
    from ..store.embedded import EmbeddedRedis

    emb = EmbeddedRedis.default()
    url = settings().redis_url
    click.echo(f"in use: {shown_url(url) if url else emb.url + ' (embedded)'}")
    pid = emb.pid()
    state = f"running, pid {pid}" if pid else "not running"
    click.echo(f"embedded: {state} ({emb.directory})")


@redis.command()
def stop() -> None:
    """Stop the embedded Redis daemon (data stays on disk, AOF)."""
    from ..store.embedded import EmbeddedRedis

    click.echo("stopped" if EmbeddedRedis.default().stop() else "not running")


RUN_FIELDS = (*RUN_COLUMNS, "waiting")
"""The fields of each run ``aiflow runs --json`` prints (times: epoch seconds, or null)."""


@click.command("runs")
@click.option("--workflow", default=None, help="Only this workflow's runs.")
@click.option("--status", "status_", type=click.Choice(RECORDED), default=None)
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Runs listed."
)
@json_option
def runs_cmd(workflow: str | None, status_: str | None, limit: int, as_json: bool) -> None:
    """List recent runs, newest first (--json: {"runs": [...]})."""
    from ..access.runs import list_runs
    from ..ops.routing import with_waiting

    try:
        rows = with_waiting(list_runs(workflow, status_, limit))
    except AiflowError as exc:
        fail(exc)
    if as_json:
        print_json({"runs": [{f: row.get(f) for f in RUN_FIELDS} for row in rows]})
        return
    if not rows:
        click.echo("no runs")
        return
    click.echo(
        table(
            ("RUN_ID", "WORKFLOW", "STATUS", "CREATED", "DURATION"),
            [
                (
                    row["run_id"],
                    row["workflow"],
                    row["status"],
                    _when(row["created_at"]),
                    f"{row['duration']:.2f}s" if row["duration"] is not None else "-",
                )
                for row in rows
            ],
            right=("DURATION",),
        )
    )
    for row in rows:
        if row.get("waiting"):
            click.secho(f"{row['run_id']} waiting: {row['waiting']}", fg="yellow")


def _when(ts: float | None) -> str:
    """Epoch seconds as a UTC time to the second (``2026-12-02 11:58:22``)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.argument("run_id")
def attach(run_id: str) -> None:
    """Print a run's history, then follow it live until it ends (while it waits for a
    worker that can run it, say why). Exits 0 when the run completed, 3 when it failed,
    4 when it was cancelled."""
    from ..access.handle import attach as attach_run
    from ..events.follow import Follow
    from ..examples.console import print_event

    try:
        handle = attach_run(run_id)
        said: str | None = None
        for batch in Follow(run_id).batches(handle.client):
            for event in batch:
                print_event(event)
            if not batch:  # caught up, or a second with nothing new
                waiting = _waiting(handle)
                if waiting and waiting != said:
                    click.secho(f"waiting: {waiting}", fg="yellow")
                said = waiting or said
        ended = handle.status
    except AiflowError as exc:
        fail(exc)
    sys.exit(_ATTACH_EXITS.get(ended, exits.ERROR))


_ATTACH_EXITS: dict[str, int] = {
    RunStatus.COMPLETED: exits.OK,
    RunStatus.FAILED: exits.RUN_FAILED,
    RunStatus.CANCELLED: exits.RUN_CANCELLED,
}


def _waiting(handle: RunHandle) -> str | None:
    """Why the run waits, if no live worker can take it; None also when that cannot be
    read now (a Redis outage must not stop the following)."""
    from redis.exceptions import RedisError

    try:
        return handle.waiting
    except (AiflowError, RedisError, OSError):
        return None


@click.command()
@click.argument("run_id")
def resume(run_id: str) -> None:
    """Queue an interrupted or failed run again (journaled steps replay)."""
    from ..ops.submit import resume as resume_run

    try:
        resume_run(run_id)
    except AiflowError as exc:
        fail(exc)
    click.echo(f"queued {run_id} for resumption; follow it with: aiflow attach {run_id}")


@click.command()
@click.argument("run_id")
def cancel(run_id: str) -> None:
    """Cancel a run: a queued or waiting one at once ("cancelled"), a running one through
    its worker ("cancelling"). A run that already ended is left as it is: says so, exits 1."""
    from ..ops.submit import cancel as cancel_run

    try:
        status = cancel_run(run_id)
    except AiflowError as exc:
        fail(exc)
    if status in TERMINAL and status != RunStatus.CANCELLED:
        fail(RunStateError(f"run {run_id} already ended ({status}); nothing to cancel"))
    click.echo(status)


def register(group: click.Group) -> None:
    for command in (demo, redis, runs_cmd, attach, resume, cancel):
        group.add_command(command)
