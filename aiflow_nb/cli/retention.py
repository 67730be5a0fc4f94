"""Data lifecycle commands: delete, prune, archive."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from ..errors import AiflowError, ConfigError
from ..events.status import TERMINAL
from .core import fail

__all__ = ["archive", "delete", "parse_since", "prune", "register"]


def parse_since(text: str) -> float:
    """``--since``: a duration back from now (``7d``, ``12h``) or an ISO date or time
    (``2026-12-01``, ``2026-12-01T08:00``; UTC unless it says otherwise) -> epoch seconds."""
    from ..config import parse_duration

    try:
        return time.time() - parse_duration(text, "--since")
    except ConfigError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since must be a duration back from now (7d, 12h) or an ISO date "
            f"(2026-12-01); got {text!r}"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
def delete(run_ids: tuple[str, ...]) -> None:
    """Delete finished runs now: record, events, journal and index entries."""
    from ..ops.retention import delete as delete_run

    failed = 0
    for run_id in run_ids:
        try:
            delete_run(run_id)
            click.echo(f"deleted {run_id}")
        except AiflowError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            failed += 1
    click.echo(f"{len(run_ids) - failed} deleted, {failed} not", err=True)
    if failed:
        raise SystemExit(1)


@click.command()
@click.option("--older-than", "older_than", required=True, help="ended more than (7d, 12h, 90s)")
@click.option("--workflow", default=None, help="only this workflow's runs")
@click.option("--status", "status_", type=click.Choice(sorted(TERMINAL)), default=None)
def prune(older_than: str, workflow: str | None, status_: str | None) -> None:
    """Delete the finished runs that ended more than --older-than ago."""
    from ..config import parse_duration
    from ..ops.retention import prune as prune_runs

    def progress(seen: int, deleted: int) -> None:
        click.echo(f"  looked at {seen} runs, deleted {deleted}", err=True)

    try:
        seconds = parse_duration(older_than, "--older-than")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    try:
        deleted = prune_runs(seconds, workflow, status_, progress=progress)
    except AiflowError as exc:
        fail(exc)
    click.echo(f"pruned {deleted} runs")


@click.command()
@click.option("--to", "directory", required=True, type=click.Path(file_okay=False))
@click.option("--since", default=None, help="ended since: a duration (7d) or ISO date")
def archive(directory: str, since: str | None) -> None:
    """Write finished runs (record + events) as Parquet, partitioned by the day they ended."""
    from ..access.archive import archive as archive_runs

    def progress(written: int) -> None:
        click.echo(f"  {written} runs read", err=True)

    try:
        after = None if since is None else parse_since(since)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    try:
        written = archive_runs(directory, after, progress=progress)
    except AiflowError as exc:
        fail(exc)
    click.echo(f"archived {written} runs to {directory}")


def register(group: click.Group) -> None:
    for command in (delete, prune, archive):
        group.add_command(command)
