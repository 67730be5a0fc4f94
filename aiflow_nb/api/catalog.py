"""The workflows the API offers: this process's registry plus notebook-registered ones,
each with a pydantic input model and JSON Schemas.

A process workflow's model comes from its signature and type hints
(``authoring.interface``). A notebook workflow is never imported nor executed here: its
bundle carries the interface its kernel computed (``ops/code.read_interface``) and the
model is built from that JSON Schema (``schema_models``). Notebook workflows win over an
imported one of the same name (a notebook re-run is the newest definition). A notebook
entry that cannot be read (missing bundle, bad JSON, no interface, bad signature) is
left out of the list, logged once; asking for it answers 409 with the reason.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaError

from ..authoring import registry
from ..authoring.interface import input_model, output_schema, schema_of, signature_of
from ..authoring.workflow import Workflow
from ..errors import AiflowError, CodeRejected, WorkflowNotFound
from .errors import validation_error
from .schema_models import model_from_schema

__all__ = ["Entry", "describe", "entries", "get", "names", "validate_inputs"]

log = logging.getLogger("aiflow_nb.api")

_CACHE_SIZE = 512
"""Notebook entries kept built (by bundle digest; bundles never change)."""


@dataclass(frozen=True)
class Entry:
    """One workflow as the API sees it."""

    name: str
    description: str
    inputs: type[BaseModel]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    secret_args: frozenset[str]
    signature: inspect.Signature
    code_bundle: str | None
    source: str  # "process" or "notebook"
    retention: float | None = None
    """Seconds its finished runs are kept (a process workflow's ``retention``; a notebook
    one's is applied by the worker that loads its code)."""


_lock = threading.Lock()
_process: weakref.WeakKeyDictionary[Workflow[Any, Any], Entry] = weakref.WeakKeyDictionary()
_notebook_entries: OrderedDict[str, Entry] = OrderedDict()
_warned: set[tuple[str, str]] = set()


def _index() -> dict[str, str]:
    try:
        from ..ops import code
    except ImportError:  # the code registry is optional
        return {}
    return code.notebook_workflows()


def names() -> list[str]:
    """Every workflow name the API may offer (an unreadable notebook one included)."""
    return sorted(set(registry.names()) | set(_index()))


def get(name: str) -> Entry:
    """The entry of workflow ``name``; ``WorkflowNotFound`` (404), or ``CodeRejected``
    (409) for a notebook workflow whose registration cannot be read."""
    bundle = _index().get(name)
    if bundle is not None:
        try:
            return _notebook(name, bundle)
        except CodeRejected as exc:
            _warn_once(name, bundle, exc)
            if name not in registry.names():
                raise CodeRejected(f"workflow {name!r} cannot be offered: {exc}") from None
    try:
        wf = registry.get(name)
    except WorkflowNotFound:
        raise WorkflowNotFound(name, names()) from None
    return _of_process(wf)


def entries() -> list[Entry]:
    """The entries of every workflow that can be offered (unreadable ones left out)."""
    found = []
    for name in names():
        try:
            found.append(get(name))
        except (CodeRejected, WorkflowNotFound):  # logged once by get; or gone meanwhile
            continue
    return found


def _warn_once(name: str, bundle: str, exc: Exception) -> None:
    with _lock:
        if (name, bundle) in _warned:
            return
        _warned.add((name, bundle))
    log.warning("notebook workflow %r is not offered by the API: %s", name, exc)


def _of_process(wf: Workflow[Any, Any]) -> Entry:
    with _lock:
        entry = _process.get(wf)
    if entry is not None and entry.code_bundle != wf.code_bundle:  # a kernel re-registered it
        entry = replace(entry, code_bundle=wf.code_bundle)
        with _lock:
            _process[wf] = entry
    if entry is None:
        model = input_model(wf)
        doc = inspect.getdoc(wf.fn) or ""
        entry = Entry(
            name=wf.name,
            description=doc.split("\n\n")[0],
            inputs=model,
            input_schema=schema_of(model),
            output_schema=output_schema(wf),
            secret_args=wf.secret_args,
            signature=wf.signature,
            code_bundle=wf.code_bundle,
            source="process",
            retention=wf.retention,
        )
        with _lock:
            _process[wf] = entry
    return entry


def _notebook(name: str, bundle: str) -> Entry:
    with _lock:
        entry = _notebook_entries.get(bundle)
    if entry is not None:
        return entry
    from ..ops import code

    doc = code.read_interface(bundle)  # reads Redis; executes nothing
    try:
        entry = _from_interface(name, bundle, doc)
    except (KeyError, TypeError, ValueError, SchemaError, RecursionError) as exc:
        # SchemaError: a constraint pydantic cannot build (a pattern its regex engine
        # refuses); RecursionError: a schema nested past Python's stack
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodeRejected(
            f"code bundle {bundle[:12]} has a malformed interface ({reason})"
        ) from None
    with _lock:
        _notebook_entries[bundle] = entry
        while len(_notebook_entries) > _CACHE_SIZE:
            _notebook_entries.popitem(last=False)
    return entry


def _from_interface(name: str, bundle: str, doc: dict[str, Any]) -> Entry:
    schema = doc["input_schema"]
    if not isinstance(schema, dict) or not isinstance(doc["output_schema"], dict):
        raise TypeError("a schema is not an object")
    return Entry(
        name=name,
        description=str(doc.get("description") or ""),
        inputs=model_from_schema(f"{name}_inputs", schema),
        input_schema=schema,
        output_schema=doc["output_schema"],
        secret_args=frozenset(str(a) for a in doc.get("secret_args") or ()),
        signature=signature_of(doc),
        code_bundle=bundle,
        source="notebook",
    )


def validate_inputs(entry: Entry, raw: Any) -> dict[str, Any]:
    """Inputs as JSON-ready values; ``ApiError`` 422 naming each bad field."""
    what = f"inputs of workflow {entry.name!r}"
    if not isinstance(raw, dict):
        msg = f"must be a JSON object of inputs (got {type(raw).__name__})"
        raise validation_error([{"loc": ("body",), "msg": msg}], what)
    try:
        model = entry.inputs.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc.errors(), what) from None
    values = model.model_dump(mode="json", exclude_unset=True, by_alias=True)
    try:
        return dict(entry.signature.bind(**values).arguments)
    except AiflowError:
        raise
    except TypeError as exc:
        raise validation_error([{"loc": ("body",), "msg": str(exc)}], what) from None


def describe(entry: Entry, detail: bool = True) -> dict[str, Any]:
    """What ``GET /workflows[/{name}]`` shows of a workflow."""
    out: dict[str, Any] = {
        "name": entry.name,
        "description": entry.description,
        "source": entry.source,
    }
    if detail:
        out.update(
            input_schema=entry.input_schema,
            output_schema=entry.output_schema,
            secret_args=sorted(entry.secret_args),
        )
    return out
