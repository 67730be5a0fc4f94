"""Start the local OpenAI-compatible server in this process (tests, notebooks, the demo).

Example::

    from aiflow_nb.llm import serve_fake_llm

    server = serve_fake_llm(latency=0.1, tokens_per_s=50)   # started; port 0 = any free
    server.base_url                 # "http://127.0.0.1:PORT/v1", for OPENAI_BASE_URL
    server.llm.set(error_rate=0.2)  # change knobs while it runs
    server.llm.requests             # the request log
    server.stop()                   # or use it as a context manager
"""

from __future__ import annotations

from typing import Any

from ..serving import ServerThread
from .fake_server import FakeLLM, Knobs, create_app

__all__ = ["FakeLLMServer", "serve_fake_llm"]


class FakeLLMServer(ServerThread):
    """The local LLM server running in a thread; ``llm`` is its state and knobs."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", **knobs: Any) -> None:
        self.llm = FakeLLM(Knobs(**knobs))
        super().__init__(create_app(self.llm), host=host, port=port or None)

    def __enter__(self) -> FakeLLMServer:
        return self if self._thread.is_alive() else self.start()  # type: ignore[return-value]

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ends in ``/v1``)."""
        return f"{self.url}/v1"


def serve_fake_llm(port: int = 0, host: str = "127.0.0.1", **knobs: Any) -> FakeLLMServer:
    """Start the local LLM server on ``host:port`` with ``knobs`` (see ``Knobs``)."""
    server = FakeLLMServer(port=port, host=host, **knobs)
    server.start()
    return server
