"""Compute commands: worker, workers, monitor, deploy, deployments."""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from .. import defaults
from ..errors import AiflowError
from .core import fail
from .output import json_option, print_json

if TYPE_CHECKING:
    from ..ops.monitor import Monitor
    from ..ops.recovery import Recovery

__all__ = [
    "DEPLOYMENT_FIELDS",
    "WORKER_FIELDS",
    "daemon",
    "deploy",
    "deployments",
    "import_apps",
    "monitor",
    "register",
    "worker",
    "workers",
]


def import_apps(modules: tuple[str, ...]) -> None:
    """Import the modules defining the workflows to serve (the current directory first
    on ``sys.path``, as ``python -m`` would have it)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import {name!r}: {exc}", param_hint="--app") from exc


@click.group(invoke_without_command=True)
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Module defining workflows to serve (repeatable).",
)
@click.option(
    "--concurrency",
    default=defaults.WORKER_CONCURRENCY,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs executed at once.",
)
@click.option(
    "--version",
    default=None,
    help="Deployment version to serve [default: AIFLOW_VERSION, else the active one].",
)
@click.option("--burst", is_flag=True, help="Stop once the queue is drained.")
@click.option(
    "--drain-timeout",
    default=defaults.DRAIN_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds runs in hand may take after SIGTERM "
    "before they are handed back to other workers.",
)
@click.option(
    "--max-restarts",
    default=defaults.MAX_RESTARTS,
    show_default=True,
    type=click.IntRange(min=0),
    help="Resumes of a crashed run before it fails (this worker's monitor).",
)
@click.option("--no-monitor", is_flag=True, help="Do not run a monitor in this worker.")
@click.option("--no-code", is_flag=True, help="Take no runs of registered notebook code.")
@click.pass_context
def worker(
    ctx: click.Context,
    apps: tuple[str, ...],
    concurrency: int,
    version: str | None,
    burst: bool,
    drain_timeout: float,
    max_restarts: int,
    no_monitor: bool,
    no_code: bool,
) -> None:
    """Execute the queued runs this worker can run (the workflows of its --app modules,
    and registered notebook code unless --no-code) until SIGTERM (drain) or a second
    SIGTERM/SIGINT (stop now). Redis unreachable at start: it waits for it (one log line).
    `aiflow worker daemon` manages this machine's background
    worker for notebook code."""
    if ctx.invoked_subcommand is not None:
        return
    from ..authoring import registry
    from ..ops.routing import ALL, NONE
    from ..ops.signals import run_worker
    from ..ops.worker import Worker

    import_apps(apps)

    def ready(started: Worker) -> None:  # the version is known once Redis answered
        serves = ", ".join(registry.names()) or "no workflow"
        click.echo(
            f"worker {started.id} (pid {os.getpid()}) serving version {started.version}"
            f": {serves}{'' if no_code else ' and registered notebook code'}",
            err=True,
        )

    w = Worker(
        concurrency=concurrency,
        version=version,
        burst=burst,
        monitor=not no_monitor,
        max_restarts=max_restarts,
        code=NONE if no_code else ALL,
        wait_for_redis=True,  # started beside its Redis: wait for it, say so once
        on_ready=ready,
    )
    try:
        code = run_worker(w, drain_timeout)
    except AiflowError as exc:
        fail(exc)
    click.echo(f"worker {w.id} stopped after {w.completed} run(s)", err=True)
    sys.exit(code)


@worker.command()
@click.argument("action", type=click.Choice(["status", "start", "stop"]), default="status")
@click.option("--version", default=None, help="[default: AIFLOW_VERSION, else the active one]")
def daemon(action: str, version: str | None) -> None:
    """This machine's background worker for registered notebook code (started by
    `%load_ext aiflow_nb`; it outlives kernels): status, start or stop it."""
    from ..ops import daemon as d

    try:
        if action == "start":
            click.echo(f"code worker daemon: {d.ensure_daemon(version)}")
        elif action == "stop":
            stopped = d.stop_daemons(version)
            click.echo(f"stopped {len(stopped)} code worker daemon(s)")
            return
        rows = d.daemons(version=version)
    except AiflowError as exc:
        fail(exc)
    if action == "status" and not rows:
        click.echo("no code worker daemon live on this machine")
    for row in rows:
        click.echo(
            f"{row['id']}  pid {row['pid']}  version {row['version']}  {row['state']}  "
            f"{row['in_hand']} run(s) in hand  log {d.log_path(row['version'])}"
        )


WORKER_FIELDS = (
    "id",
    "host",
    "pid",
    "version",
    "state",
    "in_hand",
    "last_heartbeat",
    "kind",
    "serves",
    "code",
)
"""The fields of each worker ``aiflow workers --json`` prints."""
DEPLOYMENT_FIELDS = ("version", "active", "workers", "draining", "running", "queued")
"""The fields of each version ``aiflow deployments --json`` prints."""


def _worker_json(doc: dict[str, Any]) -> dict[str, Any]:
    """A heartbeat document with its numbers as numbers (Redis holds text)."""
    out = {f: doc.get(f) for f in WORKER_FIELDS}
    for name, kind in (("pid", int), ("in_hand", int), ("last_heartbeat", float)):
        try:
            out[name] = kind(str(out[name]))
        except ValueError:  # absent or malformed
            out[name] = None
    out["kind"] = out["kind"] or "worker"
    return out


def _age(ts: str) -> str:
    return f"{max(0.0, time.time() - float(ts)):.1f}s ago"


@click.command()
@click.option("--version", default=None, help="Only workers of this version.")
@json_option
def workers(version: str | None, as_json: bool) -> None:
    """List live workers: id, host, pid, version, state, runs in hand, last heartbeat
    (--json: {"workers": [...]})."""
    from ..ops.presence import live_workers

    try:
        rows = live_workers(version=version)
    except AiflowError as exc:
        fail(exc)
    if as_json:
        print_json({"workers": [_worker_json(w) for w in rows]})
        return
    if not rows:
        click.echo("no live workers")
        return
    click.echo(
        f"{'ID':<34} {'HOST':<16} {'PID':>7} {'VERSION':<12} {'STATE':<9} {'RUNS':>4}  "
        f"{'HEARTBEAT':<10} {'KIND':<10} SERVES"
    )
    for w in rows:
        click.echo(
            f"{w['id']:<34} {w['host'][:16]:<16} {w['pid']:>7} {w['version']:<12} "
            f"{w['state']:<9} {w['in_hand']:>4}  {_age(w['last_heartbeat']):<10} "
            f"{w.get('kind', 'worker'):<10} {_serves(w)}"
        )


def _serves(doc: dict[str, Any]) -> str:
    names = list(doc.get("serves") or [])
    code = {"all": ["registered code"], "resumed": ["resumed registered code"]}
    return ", ".join([*names, *code.get(doc.get("code") or "", [])]) or "-"


@click.command()
@click.option(
    "--max-restarts",
    default=defaults.MAX_RESTARTS,
    show_default=True,
    type=click.IntRange(min=0),
    help="Resumes of a crashed run before it fails.",
)
@click.option(
    "--interval",
    default=defaults.MONITOR_INTERVAL,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between two sweeps.",
)
@click.option("--once", is_flag=True, help="Sweep once, print what was done, and exit.")
def monitor(max_restarts: int, interval: float, once: bool) -> None:
    """Recover runs of dead workers (resume them, or fail them as crashed and notify)."""
    from ..ops.monitor import Monitor
    from ..ops.signals import run_monitor
    from ..store import run_in_new_loop

    m = Monitor(max_restarts=max_restarts, interval=interval)
    try:
        if once:
            for result in run_in_new_loop(_sweep_once(m)):
                click.echo(f"{result.run_id}  {result.outcome}  restarts={result.restarts}")
            return
        sys.exit(run_monitor(m))
    except AiflowError as exc:
        fail(exc)


async def _sweep_once(m: Monitor) -> list[Recovery]:
    try:
        return await m.sweep()
    finally:
        await m.release()
        await m.notifier.aclose()


@click.command()
@click.argument("version")
def deploy(version: str) -> None:
    """Point new runs at VERSION (runs in flight finish on their own version's workers)."""
    from ..ops.deployments import deploy as deploy_version
    from ..ops.presence import live_workers

    try:
        before = deploy_version(version)
        serving = live_workers(version=version.strip())
    except (AiflowError, ValueError) as exc:
        fail(exc)
    click.echo(f"new runs go to {version} (was {before or defaults.VERSION + ', the default'})")
    if not serving:
        click.secho(
            f"warning: no live worker serves {version} yet; start one with "
            f"`aiflow worker --version {version}`",
            fg="yellow",
            err=True,
        )


@click.command()
@json_option
def deployments(as_json: bool) -> None:
    """Versions, their live workers and runs in flight (the active one first; --json:
    {"deployments": [...]})."""
    from ..ops.deployments import deployments as list_deployments

    try:
        rows = list_deployments()
    except AiflowError as exc:
        fail(exc)
    if as_json:
        print_json({"deployments": [{f: row.get(f) for f in DEPLOYMENT_FIELDS} for row in rows]})
        return
    if not rows:
        click.echo("no deployments yet")
        return
    click.echo(f"  {'VERSION':<16} {'WORKERS':>7} {'DRAINING':>8} {'RUNNING':>7} {'QUEUED':>6}")
    for row in rows:
        mark = "*" if row["active"] else " "
        click.echo(
            f"{mark} {row['version']:<16} {row['workers']:>7} {row['draining']:>8} "
            f"{row['running']:>7} {row['queued']:>6}"
        )


def register(group: click.Group) -> None:
    for command in (worker, workers, monitor, deploy, deployments):
        group.add_command(command)
