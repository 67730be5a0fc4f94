"""Serving the API with uvicorn: in the foreground (``aiflow api``) or in a thread (a
notebook, a test, a benchmark).

Example (from a notebook)::

    from aiflow_nb.api import ServerThread, create_app
    server = ServerThread(create_app()).start()
    server.url          # 'http://127.0.0.1:8000'
    server.stop()
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from .. import defaults, serving
from ..serving import free_port
from ..store import aclose_async_redis
from .accesslog import install_token_masking
from .config import ApiConfig, check_bind

__all__ = ["ServerThread", "free_port", "serve"]


def _config_of(app: Any) -> ApiConfig:
    config = getattr(getattr(app, "state", None), "api_config", None)
    return config if isinstance(config, ApiConfig) else ApiConfig()


def serve(
    app: FastAPI,
    host: str = defaults.API_HOST,
    port: int = defaults.API_PORT,
    log_level: str = "info",
) -> None:
    """Run ``app`` until interrupted; refuses a non-loopback host when no key is set."""
    check_bind(host, _config_of(app))
    install_token_masking()
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


class ServerThread(serving.ServerThread):
    """The REST API served on a daemon thread; refuses a non-loopback host when no API key
    is configured (the rule ``aiflow api`` applies too)."""

    def __init__(
        self,
        app: Any,
        host: str = defaults.API_HOST,
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        check_bind(host, _config_of(app))
        super().__init__(app, host=host, port=port, log_level=log_level)

    async def _serve(self) -> None:
        try:
            await super()._serve()
        finally:
            await aclose_async_redis()  # the API's clients on this loop (api/pool.py)
