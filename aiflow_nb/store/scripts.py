"""Lua scripts by digest: ``EVALSHA`` (the script's text is sent only when this Redis does
not have it yet, e.g. after a restart: ``EVAL`` loads it), so a hot-path script costs
Redis no parsing and no SHA1 of its text per call.

Example::

    reply = await run_script(client, leases.TAKE_AND_READ, 4, *keys, token, ttl_ms)
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha1
from typing import Any

import redis
import redis.asyncio as aredis

__all__ = ["digest", "run_script", "run_script_sync"]


@lru_cache(maxsize=64)
def digest(script: str) -> str:
    """The script's SHA1, as ``EVALSHA`` names it."""
    return sha1(script.encode()).hexdigest()


async def run_script(client: aredis.Redis, script: str, numkeys: int, *args: Any) -> Any:
    """``EVALSHA`` of ``script`` with ``numkeys`` keys then the arguments (``EVAL`` when
    this Redis does not know it)."""
    try:
        return await client.evalsha(digest(script), numkeys, *args)
    except redis.exceptions.NoScriptError:
        return await client.eval(script, numkeys, *args)


def run_script_sync(client: redis.Redis, script: str, numkeys: int, *args: Any) -> Any:
    """``run_script`` on a synchronous client."""
    try:
        return client.evalsha(digest(script), numkeys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(script, numkeys, *args)
