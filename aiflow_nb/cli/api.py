"""``aiflow api``: serve the REST API with uvicorn."""

from __future__ import annotations

import click

from .. import defaults
from ..errors import AiflowError
from .core import fail

__all__ = ["api", "register"]


@click.command("api")
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE to register its workflows (repeatable).",
)
@click.option(
    "--host",
    default=defaults.API_HOST,
    show_default=True,
    help="Address to bind; anything but loopback needs AIFLOW_API_KEYS.",
)
@click.option("--port", default=defaults.API_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--keys-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="File of API keys, one a line (also AIFLOW_API_KEYS_FILE).",
)
def api(apps: tuple[str, ...], host: str, port: int, keys_file: str | None) -> None:
    """Serve every workflow as a REST endpoint (runs execute on workers, not here)."""
    import os

    from ..api import create_app, serve
    from ..api.config import check_bind

    if keys_file:
        os.environ["AIFLOW_API_KEYS_FILE"] = keys_file
    try:
        app = create_app(apps)
        check_bind(host, app.state.api_config)
    except AiflowError as exc:
        fail(exc)
    mode = "API keys required" if app.state.api_config.api_keys else "no API key (loopback only)"
    click.echo(f"aiflow api on http://{host}:{port} ({mode}); docs at /docs", err=True)
    serve(app, host, port)


def register(group: click.Group) -> None:
    group.add_command(api)
