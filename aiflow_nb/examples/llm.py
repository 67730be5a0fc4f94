"""The LLM client the example workflows use, chosen from the environment.

- ``OPENAI_API_KEY`` set: the real provider (``OPENAI_BASE_URL`` honoured by the SDK).
- otherwise: the local server at ``AIFLOW_FAKE_LLM_URL`` (default
  ``http://127.0.0.1:8787/v1``, where ``aiflow fake-llm`` listens). ``aiflow demo``, the
  tests and the benchmark start one in a thread and set that variable.

``AIFLOW_LLM_MODEL`` picks the model (default ``gpt-4o-mini``). The environment is read
where the workflow executes, so a worker in another process needs the same variables.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

from .. import defaults
from ..llm.client import AsyncOpenAI, AsyncTracedOpenAI

__all__ = ["FAKE_URL_ENV", "llm_client", "llm_model", "use_fake_llm"]

FAKE_URL_ENV = "AIFLOW_FAKE_LLM_URL"
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[tuple[Any, ...], AsyncTracedOpenAI]
] = weakref.WeakKeyDictionary()


def llm_model() -> str:
    """The model the examples ask for."""
    return os.environ.get("AIFLOW_LLM_MODEL") or "gpt-4o-mini"


def _settings() -> tuple[Any, ...]:
    if os.environ.get("OPENAI_API_KEY"):
        return ("real", os.environ.get("OPENAI_BASE_URL"))
    url = os.environ.get(FAKE_URL_ENV) or f"http://127.0.0.1:{defaults.FAKE_LLM_PORT}/v1"
    return ("fake", url)


def llm_client() -> AsyncTracedOpenAI:
    """The running loop's client (an httpx pool is bound to the loop that opened it)."""
    loop = asyncio.get_running_loop()
    settings = _settings()
    cached = _clients.get(loop)
    if cached is not None and cached[0] == settings:
        return cached[1]
    if settings[0] == "real":
        client = AsyncOpenAI()
    else:
        client = AsyncOpenAI(base_url=settings[1], api_key="fake-llm", provider_name="fake-llm")
    _clients[loop] = (settings, client)
    return client


def use_fake_llm(base_url: str) -> None:
    """Point the examples (in this process and the ones it starts) at a local server."""
    os.environ[FAKE_URL_ENV] = base_url
