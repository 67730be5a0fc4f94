"""``aiflow viewer`` as a command: its URL, and a clear error for a port in use."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from aiflow_nb.cli import cli

from support.browser import viewer_server


def test_viewer_prints_its_url_and_serves_the_runs_page() -> None:
    import httpx

    with viewer_server() as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "aiflow-nb" in page.text


def test_viewer_on_a_port_in_use_fails_clearly() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["viewer", "--port", str(port)])
    assert result.exit_code == 1
    assert "error:" in result.output and "in use" in result.output.lower()
