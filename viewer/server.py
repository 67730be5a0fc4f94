"""Serve the dashboard with Panel's (Bokeh's) server on a loopback address."""

from __future__ import annotations

import socket
from typing import Any

import panel as pn

__all__ = ["free_port", "make_server"]


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``address`` right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def make_server(
    port: int = 5006, address: str = "127.0.0.1", origins: tuple[str, ...] = ()
) -> tuple[Any, str]:
    """A started (not yet looping) server of ``aiflow_viewer.app``, and its URL (``port=0``:
    any free port).

    Browsers may connect from ``address:port`` and ``localhost:port``, plus ``origins``
    (``host[:port]``, for a server reached under another name).
    """
    from .app import create_app

    port = port or free_port(address)
    origins = (f"{address}:{port}", f"localhost:{port}", *origins)
    server = pn.serve(
        {"/": create_app},
        port=port,
        address=address,
        show=False,
        start=False,
        websocket_origin=list(origins),
        title="aiflow-nb",
        verbose=False,
    )
    server.start()
    return server, f"http://{address}:{port}/"
