"""Which workers are alive: heartbeat hashes with a TTL, indexed in a sorted set.

A worker counts as live while its hash exists, it is ``active`` (a draining or exiting
worker takes no new run), and, when it runs on this machine, its process still exists (a
SIGKILLed kernel's worker is not live for the rest of its heartbeat TTL). Each document
says what the worker serves (``serves``: workflow names, ``code``: registered notebook
code), so routing (``ops/routing.py``) can tell whether anyone can take a run.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis

from .. import keys
from ..serialization import dumps, loads
from ..store import sync_redis

__all__ = [
    "ACTIVE",
    "Advert",
    "advertise",
    "heartbeat_document",
    "live_workers",
    "node",
    "process_alive",
    "withdraw",
]

ACTIVE = "active"
"""The state of a worker taking runs (the others: ``draining``)."""

Advert = Callable[[], list[str]]
"""What a worker of this process serves now (workflow names), asked on each read."""

_here: dict[str, Advert] = {}


def advertise(worker_id: str, serves: Advert) -> None:
    """Register a worker of this process: readers here see what it serves now, not as of
    its last heartbeat (a workflow a kernel just defined is served at its next poll)."""
    _here[worker_id] = serves


def withdraw(worker_id: str) -> None:
    _here.pop(worker_id, None)


def node() -> str:
    """This machine as heartbeats name it: host name plus pid namespace (containers on
    one host with one host name still differ), so a pid is only checked where it means
    something."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    return f"{socket.gethostname()}/{ns}" if ns else socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    doc: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    doc["serves"] = loads(doc["serves"]) if doc.get("serves") else []
    doc["code"] = doc.get("code") or "none"
    return doc


def _gone(doc: dict[str, Any], here: str) -> bool:
    """A worker of this machine whose process no longer exists."""
    pid = str(doc.get("pid") or "")
    return doc.get("node") == here and pid.isdigit() and not process_alive(int(pid))


def live_workers(
    client: redis.Redis | None = None, version: str | None = None, *, active: bool = False
) -> list[dict[str, Any]]:
    """Heartbeat documents of live workers (of ``version`` when given; only ``active``
    ones when asked), newest first."""
    r = client or sync_redis()
    ids = [i.decode() for i in cast("list[bytes]", r.zrevrange(keys.workers(), 0, -1))]
    if not ids:
        return []
    pipe = r.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hgetall(keys.worker(worker_id))
    found: list[dict[str, Any]] = []
    stale: list[str] = []
    here = node()
    for worker_id, raw in zip(ids, pipe.execute(), strict=True):
        if not raw:
            stale.append(worker_id)
            continue
        doc = _decode(raw)
        if worker_id in _here:
            doc["serves"] = _here[worker_id]()
        if _gone(doc, here) or (active and doc.get("state") != ACTIVE):
            continue
        if version is None or doc.get("version") == version:
            found.append(doc)
    if stale:
        r.zrem(keys.workers(), *stale)
    return found


def heartbeat_document(
    worker_id: str,
    version: str,
    state: str,
    runs: list[str],
    pid: int,
    host: str,
    *,
    serves: Sequence[str] = (),
    code: str = "none",
    kind: str = "worker",
) -> dict[str, Any]:
    """The hash a worker writes each heartbeat: who it is, what it serves (workflow names,
    and which runs of registered code: ``ops/routing.CodeRuns``), what it has in hand."""
    return {
        "id": worker_id,
        "version": version,
        "state": state,
        "runs": ",".join(runs),
        "in_hand": len(runs),
        "pid": pid,
        "host": host,
        "node": node(),
        "kind": kind,
        "serves": dumps(sorted(serves), "the workflows a worker serves").decode(),
        "code": code,
        "last_heartbeat": time.time(),
    }
