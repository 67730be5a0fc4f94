"""Registered code: notebook-defined components and workflows as source text in Redis.

Sources are content-addressed (sha256). A *bundle* names a workflow and lists, in order,
the sources that define it (the cells registered before it in a kernel, and its own);
a worker executes them into one fresh module, with ``linecache`` entries so tracebacks
show the cell's lines. Pickling is not the mechanism: it breaks across processes and
versions. With ``AIFLOW_SECRET`` set every source and bundle is HMAC-SHA256 signed, and
loading refuses unsigned or tampered code with ``CodeRejected``.

A bundle also carries its workflow's *interface* (``authoring/interface.py``: input and
output JSON Schema, description, secret inputs, parameters), computed where it is
registered and covered by its digest and signature. ``read_interface`` reads it without
executing anything: the REST API describes and validates notebook workflows from it.

Example::

    a = register_source("from aiflow_nb import component\\n@component\\ndef f(x): ...", "cell-1")
    b = register_source("@workflow\\ndef wf(x): return f(x)", "cell-2")
    bundle = register_bundle("wf", [a, b])
    load_workflow(bundle)  # -> Workflow
"""

from __future__ import annotations

import hashlib
import hmac
import linecache
import logging
import threading
import types
from typing import TYPE_CHECKING, Any, cast

import redis

from .. import keys
from ..authoring.interface import interface as interface_of
from ..config import settings
from ..errors import CodeRejected, WorkflowNotFound
from ..serialization import canonical, dumps, loads
from ..store import sync_redis
from ..store.replies import RawHash

if TYPE_CHECKING:
    from ..authoring.workflow import Workflow

__all__ = [
    "digest_of",
    "load_workflow",
    "notebook_workflows",
    "read_interface",
    "register_bundle",
    "register_source",
]

log = logging.getLogger("aiflow_nb.code")
_lock = threading.Lock()
_loaded: dict[str, Workflow[Any, Any]] = {}
_warned: set[bytes] = set()


def _sign(data: bytes) -> str | None:
    secret = settings().secret
    if not secret:
        return None
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _verify(what: str, data: bytes, signature: str | None) -> None:
    expected = _sign(data)
    if expected is None:
        return
    if not signature:
        raise CodeRejected(f"{what} is unsigned and AIFLOW_SECRET is set: refusing to run it")
    if not hmac.compare_digest(expected, signature):
        raise CodeRejected(
            f"{what} has a bad signature (tampered, or signed with another "
            "secret): refusing to run it"
        )


def digest_of(source: str) -> str:
    """The digest a source is registered under (computed without Redis)."""
    return hashlib.sha256(source.encode()).hexdigest()


def register_source(source: str, filename: str, client: redis.Redis | None = None) -> str:
    """Store ``source`` (signed when a secret is set); return its digest."""
    compile(source, filename, "exec")  # a SyntaxError here, not on a worker
    digest = digest_of(source)
    doc = {"source": source, "filename": filename, "sig": _sign(source.encode())}
    (client or sync_redis()).set(keys.code(digest), dumps(doc))
    return digest


def _bundle_body(name: str, sources: list[str], interface: dict[str, Any] | None) -> bytes:
    body: dict[str, Any] = {"name": name, "sources": sources}
    if interface is not None:  # bundles from before interfaces keep their digest
        body["interface"] = interface
    return canonical(body)


def register_bundle(
    name: str,
    sources: list[str],
    client: redis.Redis | None = None,
    interface: dict[str, Any] | None = None,
) -> str:
    """Store the bundle defining workflow ``name`` and make it the latest for that name.
    ``interface`` is the workflow's (``authoring.interface.interface(wf)``; a kernel
    passes its live workflow's); without it, it is computed by executing the sources
    here, in the registering process."""
    r = client or sync_redis()
    if interface is None:
        module = types.ModuleType(f"aiflow_register_{name}")
        for digest in sources:
            _exec_source(r, digest, module)
        interface = interface_of(_find_workflow(module, name))
    body = _bundle_body(name, sources, interface)
    digest = hashlib.sha256(body).hexdigest()
    doc = {"name": name, "sources": sources, "interface": interface, "sig": _sign(body)}
    pipe = r.pipeline(transaction=True)
    pipe.set(keys.code(digest), dumps(doc))
    pipe.hset(keys.code_index(), name, digest)
    pipe.execute()
    return digest


def notebook_workflows(client: redis.Redis | None = None) -> dict[str, str]:
    """Registered workflow names -> digest of their latest bundle (an entry that is not
    text is left out, logged once)."""
    raw = cast(RawHash, (client or sync_redis()).hgetall(keys.code_index()))
    found: dict[str, str] = {}
    for name, digest in raw.items():
        try:
            found[name.decode()] = digest.decode("ascii")
        except UnicodeDecodeError:
            if name not in _warned:
                _warned.add(name)
                log.warning(
                    "the code index entry %r is not a workflow name and a digest "
                    "(garbage bytes); it is ignored: re-register the workflow",
                    name[:60],
                )
    return found


def _fetch(r: redis.Redis, digest: str) -> dict[str, Any]:
    raw = r.get(keys.code(digest))
    if raw is None:
        raise CodeRejected(f"registered code {digest[:12]} is missing from Redis")
    try:
        doc = loads(raw)
    except ValueError:  # orjson.JSONDecodeError
        raise CodeRejected(f"registered code {digest[:12]} is not JSON (corrupted)") from None
    if not isinstance(doc, dict):
        raise CodeRejected(f"registered code {digest[:12]} is not a code document (corrupted)")
    return doc


def read_interface(bundle: str, client: redis.Redis | None = None) -> dict[str, Any]:
    """The interface a bundle was registered with, read without executing anything
    (signature checked when ``AIFLOW_SECRET`` is set); ``CodeRejected`` when it cannot
    be read."""
    doc = _fetch(client or sync_redis(), bundle)
    name, sources, interface = doc.get("name"), doc.get("sources"), doc.get("interface")
    if not isinstance(name, str) or not isinstance(sources, list):
        raise CodeRejected(f"code bundle {bundle[:12]} is not a bundle (corrupted)")
    if not isinstance(interface, dict):
        raise CodeRejected(
            f"code bundle {bundle[:12]} ({name}) was registered without its interface "
            "(by an older aiflow-nb); run its %%workflow cell again"
        )
    _verify(
        f"code bundle {bundle[:12]} ({name})",
        _bundle_body(name, sources, interface),
        doc.get("sig"),
    )
    return interface


def load_workflow(bundle: str, client: redis.Redis | None = None) -> Workflow[Any, Any]:
    """Execute a bundle's sources into a fresh module; return its workflow (cached)."""
    with _lock:
        if bundle in _loaded:
            return _loaded[bundle]
    r = client or sync_redis()
    doc = _fetch(r, bundle)
    _verify(
        f"code bundle {bundle[:12]} ({doc.get('name')})",
        _bundle_body(doc["name"], doc["sources"], doc.get("interface")),
        doc.get("sig"),
    )
    module = types.ModuleType(f"aiflow_code_{bundle[:12]}")
    for digest in doc["sources"]:
        _exec_source(r, digest, module)
    wf = _find_workflow(module, doc["name"])
    wf.code_bundle = bundle
    with _lock:
        _loaded[bundle] = wf
    return wf


def _exec_source(r: redis.Redis, digest: str, module: types.ModuleType) -> None:
    src = _fetch(r, digest)
    source: str = src["source"]
    if hashlib.sha256(source.encode()).hexdigest() != digest:
        raise CodeRejected(f"registered code {digest[:12]} does not match its digest (tampered)")
    _verify(f"registered code {src.get('filename')}", source.encode(), src.get("sig"))
    filename = f"<aiflow-code {src.get('filename')} {digest[:8]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)


def _find_workflow(module: types.ModuleType, name: str) -> Workflow[Any, Any]:
    from ..authoring.workflow import Workflow

    for value in vars(module).values():
        if isinstance(value, Workflow) and value.name == name:
            return value
    raise WorkflowNotFound(name, [v.name for v in vars(module).values() if isinstance(v, Workflow)])
