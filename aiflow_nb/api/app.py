"""``create_app()``: the FastAPI application, for ``aiflow api`` or an existing ASGI app.

Example (mount it in your own app)::

    from aiflow_nb.api import create_app
    api = create_app(["mypkg.flows"])          # imports the modules defining workflows
    outer.mount("/aiflow", api)

The app only talks to Redis: it queues runs and reads their streams. It never executes
a run and never starts the in-process worker; run ``aiflow worker`` (or a notebook) for that.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ..errors import ConfigError
from ..redaction import Redactor, environment_secrets
from ..version import __version__
from .accesslog import install_token_masking
from .config import ApiConfig
from .errors import COMMON_RESPONSES, CatchAll, install_error_handlers
from .feeds import FeedHub
from .limits import BodyLimit
from .openapi import install_openapi
from .routes import events, health, inputs, rerun, runs, workflows

__all__ = ["CORS_EXPOSE", "create_app", "import_apps"]

CORS_EXPOSE = ["Location", "X-Run-Id", "Retry-After"]


def import_apps(modules: Iterable[str]) -> None:
    """Import the modules that define workflows (``--app mypkg.flows``)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import app module {name!r}: {exc}") from exc


def create_app(
    apps: Iterable[str] = (), config: ApiConfig | None = None, **options: Any
) -> FastAPI:
    """The REST API. ``options`` override ``ApiConfig`` fields (``api_keys``, ``max_body``,
    ``keepalive``, ...); without ``config`` the rest is read from the environment."""
    import_apps(apps)
    config = replace(config, **options) if config else ApiConfig.from_env(**options)
    app = FastAPI(title="aiflow-nb", version=__version__, responses=COMMON_RESPONSES)
    app.state.api_config = config
    app.state.redactor = Redactor(literals=environment_secrets(config.api_keys))
    app.state.feeds = FeedHub()
    install_error_handlers(app)
    install_token_masking()  # ?token= never reaches the access log
    for module in (workflows, runs, rerun, inputs, events, health):
        app.include_router(module.router)
    app.add_middleware(CatchAll)  # innermost: a route's unexpected error -> 500 document
    app.add_middleware(BodyLimit, max_body=config.max_body)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            expose_headers=CORS_EXPOSE,
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        )
    install_openapi(app)
    return app
