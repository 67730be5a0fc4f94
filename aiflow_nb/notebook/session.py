"""A kernel's notebook code: cells defined with the magics, in order, registered in Redis.

``define`` executes a checked cell in the user namespace and registers its source
(``ops/code.py``). The session keeps the latest digest per name in definition order (a
redefinition replaces the old one in place); a workflow's bundle is every digest the
session holds, then the workflow's own, so a worker that executes the bundle in a fresh
module defines everything the workflow can call. A run keeps the bundle it started with.
Each bundle carries its workflow's interface (input/output JSON Schema, ...), computed
here from the live workflow, so the REST API serves it without executing the cell.

With Redis unreachable a cell is still defined in the kernel: its source waits in
``pending`` (its digest is computed here) and its workflows have no bundle (a run started
meanwhile runs the kernel's objects), until ``register_pending()`` reaches Redis — the
magics call it before their work and after every cell (``post_run_cell``).
"""

from __future__ import annotations

import linecache
import time
from typing import Any

import redis

from .. import defaults
from ..authoring.component import Component
from ..authoring.interface import interface
from ..authoring.workflow import Workflow
from ..errors import CellError, RedisUnavailable
from ..ops.code import digest_of, register_bundle, register_source
from ..store.outage import CONNECTION_ERRORS
from .cells import CellSource, ComponentOptions, WorkflowOptions, build_source

__all__ = ["CodeSession", "Definition"]

_UNREACHABLE: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, RedisUnavailable)


class Definition:
    """One defined cell: its kind, name, the object it made, and its registered digests."""

    def __init__(
        self,
        cell: CellSource,
        obj: Component[Any, Any],
        digest: str,
        bundle: str | None,
        version: int,
    ) -> None:
        self.kind = cell.kind
        self.name = cell.name
        self.obj = obj
        self.digest = digest
        self.bundle = bundle
        self.version = version
        self.interface = interface(obj) if isinstance(obj, Workflow) else None
        self.registered = False
        """Its source is in Redis (False while Redis is unreachable)."""

    def __repr__(self) -> str:
        what = f" bundle {self.bundle[:12]}" if self.bundle else ""
        return f"<{self.kind} {self.name} v{self.version} {self.digest[:12]}{what}>"


class CodeSession:
    """The magics' state in one kernel."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.client = client
        self.digests: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.definitions: dict[str, Definition] = {}
        self.pending: dict[str, tuple[str, str]] = {}
        """Sources not registered yet (Redis was unreachable): digest -> source, filename."""
        self.unbundled = False
        """The workflows' bundles are out of date (Redis was unreachable)."""
        self._next_try = 0.0

    def _execute(self, cell: CellSource, namespace: dict[str, Any], version: int) -> Any:
        filename = f"<%%{cell.kind} {cell.name} v{version}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        exec(compile(cell.source, filename, "exec"), namespace)
        return namespace[cell.name]

    def define(
        self,
        kind: str,
        name: str,
        cell_text: str,
        namespace: dict[str, Any],
        options: ComponentOptions | WorkflowOptions | None = None,
    ) -> Definition:
        """Check, execute and register one cell; ``CellError`` and nothing registered when
        it cannot become a ``kind``."""
        cell = build_source(kind, name, cell_text, options)
        version = self.versions.get(name, 0) + 1
        try:
            obj = self._execute(cell, namespace, version)
        except Exception as exc:
            raise CellError(
                f"%%{kind} {name}: executing the cell raised "
                f"{type(exc).__name__}: {exc}; nothing was registered"
            ) from exc
        expected = Workflow if kind == "workflow" else Component
        if not isinstance(obj, expected):  # pragma: no cover - the generated line makes one
            raise CellError(f"%%{kind} {name}: the cell did not produce a {kind}")
        digest = digest_of(cell.source)
        self.pending[digest] = (cell.source, f"%%{kind} {name} v{version}")
        self.digests[name] = digest
        self.versions[name] = version
        definition = Definition(cell, obj, digest, None, version)
        self.definitions[name] = definition
        self.unbundled = True
        self._next_try = 0.0  # a new cell tries at once
        definition.registered = self.register_pending() is not None
        return definition

    def register_pending(self) -> list[str] | None:
        """Register the sources and bundles Redis has not got yet: the names of the cells
        registered now (``[]``: nothing was pending), None when Redis is still
        unreachable (kept for the next call; calls within ``CODE_REGISTER_RETRY`` seconds
        of a failed one do not try again, so a kernel without Redis stays quick)."""
        if not self.pending and not self.unbundled:
            return []
        if time.monotonic() < self._next_try:
            return None
        done = [f for _, f in self.pending.values()]
        try:
            for digest, (source, filename) in list(self.pending.items()):
                register_source(source, filename, self.client)
                del self.pending[digest]
            self._rebundle()
        except _UNREACHABLE:
            self._next_try = time.monotonic() + defaults.CODE_REGISTER_RETRY
            for d in self.definitions.values():  # meanwhile: the kernel's objects
                if isinstance(d.obj, Workflow):
                    d.bundle = d.obj.code_bundle = None
            return None
        self.unbundled = False
        for d in self.definitions.values():
            d.registered = True
        return [f.removeprefix("%%") for f in done]

    def _rebundle(self) -> None:
        """Give every workflow a bundle of the session's latest code, so its next run
        uses the latest version of every cell (runs going keep theirs)."""
        sources = list(self.digests.values())
        for definition in self.definitions.values():
            if isinstance(definition.obj, Workflow):
                definition.bundle = register_bundle(
                    definition.name, sources, self.client, interface=definition.interface
                )
                definition.obj.code_bundle = definition.bundle

    def workflows(self) -> dict[str, Workflow[Any, Any]]:
        """Workflows defined in this kernel by name (latest versions)."""
        return {n: d.obj for n, d in self.definitions.items() if isinstance(d.obj, Workflow)}
