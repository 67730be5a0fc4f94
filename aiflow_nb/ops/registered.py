"""Members a process adds once: sets whose members are never removed (the versions in
``{ns}:deployments``, each version's queues in ``keys.queues``), so the hot path (``submit``)
adds them the first time this process needs them and skips them after that.

Example::

    if not registered.known(key, member):
        pipe.sadd(key, member)
        ...  # after the write succeeded:
        registered.remember(key, member)
"""

from __future__ import annotations

import threading

from ..store import redis_url

__all__ = ["known", "remember"]

_lock = threading.Lock()
_known: set[tuple[str, str, str]] = set()


def known(key: str, member: str) -> bool:
    """This process has already added ``member`` to ``key`` (in the Redis in force)."""
    return (redis_url(), key, member) in _known


def remember(key: str, member: str) -> None:
    """``member`` is now in ``key`` (its write succeeded)."""
    with _lock:
        _known.add((redis_url(), key, member))
