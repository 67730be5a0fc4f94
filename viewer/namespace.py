"""A dashboard session's namespace: ``?ns=NAME`` (else ``AIFLOW_NAMESPACE``), read with
``config.use_namespace`` while the page is built and in each of its callbacks.

Panel runs a session's callbacks (widget changes, clicks, periodic ticks) later, on the
server's loop, outside the block the page was built in, so a page binds each callback
to the namespace in force when it binds it (``bound``); its ``Follower`` takes it onto
its own thread. Links keep the namespace (``href``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from urllib.parse import urlencode

from aiflow_nb import keys
from aiflow_nb.access.runs import namespaces
from aiflow_nb.config import namespace, settings, use_namespace
from aiflow_nb.redaction import shown_url
from aiflow_nb.store import sync_redis
from aiflow_nb.store.connection import redis_url

from .style import esc

__all__ = ["bound", "href", "unknown_namespace", "unknown_namespace_html"]

P = ParamSpec("P")
R = TypeVar("R")


def bound(fn: Callable[P, R], name: str | None = None) -> Callable[P, R]:
    """``fn``, run in namespace ``name`` (default: the one in force now) whenever called."""
    ns = name or namespace()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with use_namespace(ns):
            return fn(*args, **kwargs)

    return run


def href(**args: str) -> str:
    """A link's query string (``?run=ID``), keeping the namespace in force when it is not
    the process's own (``?ns=NAME&run=ID``); no arguments: that namespace's runs page."""
    ns = namespace()
    query = {"ns": ns} if ns != settings().namespace else {}
    return "?" + urlencode({**query, **args})


def unknown_namespace(name: str) -> bool:
    """``name`` is neither the process's namespace nor one with runs in this Redis (its
    runs index exists: what ``namespaces()`` finds, without a SCAN)."""
    if name == settings().namespace:
        return False
    with use_namespace(name):
        pipe = sync_redis().pipeline(transaction=False)  # one EXISTS per partition (slot)
        for part in range(keys.partitions()):
            pipe.exists(keys.runs(part))
        return not any(pipe.execute())


def unknown_namespace_html(name: str) -> str:
    """The page for ``?ns=NAME`` of a namespace with no runs: which ones have some."""
    known = sorted({settings().namespace, *namespaces()})
    links = ", ".join(
        f'<a href="{esc(bound(href, n)())}" target="_self"><code>{esc(n)}</code></a>' for n in known
    )
    return (
        f"<h2>namespace <code>{esc(name)}</code> not found</h2>"
        f"<p>No runs in namespace <code>{esc(name)}</code> in the Redis at "
        f"<code>{esc(shown_url(redis_url()))}</code>. Namespaces with runs: {links}.</p>"
    )
