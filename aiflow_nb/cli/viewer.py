"""Trace commands: ``aiflow viewer`` (the Panel dashboard) and ``aiflow export otlp``."""

from __future__ import annotations

import click

from .. import defaults
from ..errors import AiflowError
from .core import fail

__all__ = ["export", "otlp", "register", "viewer"]


@click.command()
@click.option(
    "--port",
    default=defaults.VIEWER_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one.",
)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Another host name browsers reach the viewer under (repeatable).",
)
def viewer(port: int, address: str, origins: tuple[str, ...]) -> None:
    """Serve the live trace dashboard (prints its URL; runs until interrupted)."""
    from aiflow_viewer.server import make_server

    from ..config import configure

    # a reader that never executes: its Resume and Rerun queue runs for the workers, and
    # never start an in-process worker here (one loading a notebook's code, at that)
    configure(local_worker=False)
    try:
        server, url = make_server(port, address, origins)
    except (AiflowError, OSError) as exc:
        fail(exc)
    click.echo(f"aiflow viewer at {url}  (one run: {url}?run=RUN_ID)", nl=True)
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        server.stop()


@click.group()
def export() -> None:
    """Send traces to other systems."""


@export.command()
@click.option("--endpoint", required=True, help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
@click.option("--follow", is_flag=True, help="Keep exporting runs as they end.")
@click.option("--service-name", default="aiflow-nb", show_default=True)
@click.argument("run_id", required=False)
def otlp(endpoint: str, follow: bool, service_name: str, run_id: str | None) -> None:
    """Export a run's spans (or, with --follow, every run as it ends) over OTLP/HTTP."""
    from ..export.otlp import OtlpExporter

    if not run_id and not follow:
        raise click.UsageError("give a RUN_ID, or --follow")
    try:
        exporter = OtlpExporter(endpoint, service_name=service_name)
        if run_id:
            n = exporter.export_run(run_id, wait=follow)
            click.echo(f"exported {n} spans of run {run_id} to {exporter.url}")
        else:
            click.echo(f"exporting runs to {exporter.url} as they end (Ctrl-C stops)")
            for rid, n in exporter.follow():
                click.echo(f"exported {n} spans of run {rid}")
    except AiflowError as exc:
        fail(exc)
    except KeyboardInterrupt:
        pass


def register(group: click.Group) -> None:
    for command in (viewer, export):
        group.add_command(command)
