"""Shared rate limits across workers, kernels and processes (Redis token buckets).

Example::

    from aiflow_nb import limits

    limits.set("openai:gpt-4o-mini", rpm=500, tpm=200_000, concurrency=20)
    with limits.acquire("openai:gpt-4o-mini", tokens=1200):
        ...  # LLM calls made through aiflow_nb.llm do this for you
"""

from .bucket import Lease, aacquire, acquire
from .config import RateLimit, adeclared, clear, declared, get, names, set

__all__ = [
    "Lease",
    "RateLimit",
    "aacquire",
    "acquire",
    "adeclared",
    "clear",
    "declared",
    "get",
    "names",
    "set",
]
