"""Serve the dashboard with Panel's (Bokeh's) server on a loopback address."""

from __future__ import annotations

import errno
import socket
from typing import Any

import panel as pn

__all__ = ["check_free", "free_port", "make_server"]


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``address`` right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def check_free(address: str, port: int) -> None:
    """Raise ``OSError`` (address in use) when ``port`` is taken on ``address``.

    Probed here, with sockets closed after, because the server's own bind (tornado's
    ``bind_sockets``) leaves its socket open when it fails. Other errors are left to it.
    """
    found = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    for family, kind, proto, _, sockaddr in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise


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
    check_free(address, port)
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
