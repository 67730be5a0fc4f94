"""The workflows the API offers: this process's registry plus notebook-registered ones,
each with a pydantic input model and JSON Schemas derived from its type hints.

Notebook workflows (``ops/code.py``) win over an imported one of the same name: a
notebook re-run is the newest definition. Without the code registry module, only the
process's own workflows are listed.
"""

from __future__ import annotations

import inspect
import logging
import threading
import typing
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from ..authoring import registry
from ..authoring.workflow import Workflow
from ..errors import AiflowError, WorkflowNotFound
from .errors import validation_error

__all__ = ["Entry", "describe", "get", "names", "validate_inputs"]

log = logging.getLogger("aiflow_nb.api")


@dataclass(frozen=True)
class Entry:
    """One workflow as the API sees it."""

    workflow: Workflow[Any, Any]
    inputs: type[BaseModel]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    source: str  # "process" or "notebook"

    @property
    def name(self) -> str:
        return str(self.workflow.name)


_lock = threading.Lock()
_entries: weakref.WeakKeyDictionary[Workflow[Any, Any], Entry] = weakref.WeakKeyDictionary()


def _notebook() -> dict[str, str]:
    try:
        from ..ops import code
    except ImportError:  # the code registry is optional
        return {}
    return code.notebook_workflows()


def _load_bundle(digest: str) -> Workflow[Any, Any]:
    from ..ops import code

    return code.load_workflow(digest)


def names() -> list[str]:
    """Every workflow name the API can start."""
    return sorted(set(registry.names()) | set(_notebook()))


def get(name: str) -> Entry:
    """The entry of workflow ``name``; ``WorkflowNotFound`` (404) otherwise."""
    bundle = _notebook().get(name)
    if bundle is not None:
        wf, source = _load_bundle(bundle), "notebook"
    else:
        try:
            wf, source = registry.get(name), "process"
        except WorkflowNotFound:
            raise WorkflowNotFound(name, names()) from None
    with _lock:
        entry = _entries.get(wf)
    if entry is None:
        entry = _build(wf, source)
        with _lock:
            _entries[wf] = entry
    return entry


def _hints(wf: Workflow[Any, Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(wf.fn)
    except Exception:  # unresolvable forward references: fall back to Any
        return {}


def _usable(annotation: Any) -> Any:
    """The annotation when pydantic can validate and describe it, else ``Any``."""
    if annotation is inspect.Parameter.empty:
        return Any
    try:
        TypeAdapter(annotation).json_schema()
    except Exception:
        return Any
    return annotation


def _build(wf: Workflow[Any, Any], source: str) -> Entry:
    hints = _hints(wf)
    fields: dict[str, Any] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for pname, param in wf.signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotation = _usable(hints.get(pname, param.annotation))
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    model = create_model(f"{wf.name}_inputs", __config__=ConfigDict(extra=extra), **fields)
    try:
        input_schema = model.model_json_schema()
    except Exception:  # a default pydantic cannot render
        input_schema = {"type": "object"}
    returns = _usable(hints.get("return", wf.signature.return_annotation))
    output_schema = TypeAdapter(returns).json_schema() if returns is not Any else {}
    return Entry(wf, model, input_schema, output_schema, source)


def validate_inputs(entry: Entry, raw: Any) -> dict[str, Any]:
    """Inputs as JSON-ready values; ``ApiError`` 422 naming each bad field."""
    if not isinstance(raw, dict):
        raise validation_error(
            [
                {
                    "loc": ("body",),
                    "msg": f"must be a JSON object of inputs (got {type(raw).__name__})",
                }
            ],
            f"inputs of {entry.name!r}",
        )
    try:
        model = entry.inputs.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc.errors(), f"inputs of workflow {entry.name!r}") from None
    values = model.model_dump(mode="json", exclude_unset=True)
    try:
        return entry.workflow.bind_inputs(values)
    except AiflowError:
        raise
    except TypeError as exc:
        raise validation_error([{"loc": ("body",), "msg": str(exc)}], entry.name) from None


def describe(entry: Entry, detail: bool = True) -> dict[str, Any]:
    """What ``GET /workflows[/{name}]`` shows of a workflow."""
    doc = inspect.getdoc(entry.workflow.fn) or ""
    out: dict[str, Any] = {
        "name": entry.name,
        "description": doc.split("\n\n")[0],
        "source": entry.source,
    }
    if detail:
        out.update(
            input_schema=entry.input_schema,
            output_schema=entry.output_schema,
            secret_args=sorted(entry.workflow.secret_args),
        )
    return out
