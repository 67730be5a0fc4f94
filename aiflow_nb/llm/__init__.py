"""The LLM layer: the ``openai`` SDK as traced components, and a local server to run it on.

Example::

    from aiflow_nb.llm import AsyncOpenAI, serve_fake_llm

    server = serve_fake_llm(latency=0.1)                 # no API key needed
    client = AsyncOpenAI(base_url=server.base_url, api_key="unused", fallbacks=["gpt-4o"])
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[...])

Inside a run, each call is a span with ``gen_ai.*`` attributes and ``aiflow.cost_usd``;
streamed calls publish ``output.delta`` events. See ``docs/architecture.md``.
"""

from . import pricing
from .client import AsyncOpenAI, AsyncTracedOpenAI, OpenAI, TracedOpenAI, wrap
from .fake_server import FakeLLM, Knobs, create_app
from .local_server import FakeLLMServer, serve_fake_llm
from .pricing import Price, cost, set_price
from .retries import OUTAGE_STATUS, is_retryable, retry_after

__all__ = [
    "OUTAGE_STATUS",
    "AsyncOpenAI",
    "AsyncTracedOpenAI",
    "FakeLLM",
    "FakeLLMServer",
    "Knobs",
    "OpenAI",
    "Price",
    "TracedOpenAI",
    "cost",
    "create_app",
    "is_retryable",
    "pricing",
    "retry_after",
    "serve_fake_llm",
    "set_price",
    "wrap",
]
