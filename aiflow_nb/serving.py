"""``ServerThread``: uvicorn serving an ASGI app on a daemon thread (the REST API in a
notebook or test, the local LLM server, the demo's fixture site).

Example::

    server = ServerThread(app).start()   # returns once it listens
    server.url                           # 'http://127.0.0.1:PORT'
    server.stop()
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from . import defaults
from .errors import ConfigError

__all__ = ["ServerThread", "free_port"]


def free_port(host: str = defaults.API_HOST) -> int:
    """A TCP port free on ``host`` right now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """uvicorn serving ``app`` on a daemon thread; ``start()`` returns once it listens."""

    def __init__(
        self,
        app: Any,
        host: str = defaults.API_HOST,
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level=log_level,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="aiflow-server", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        """The thread's loop runs this (a subclass extends it to close what it opened)."""
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit (open streams are closed) and join the thread."""
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
