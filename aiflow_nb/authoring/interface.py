"""What a workflow takes and gives, as data: computed where it is defined, read where it
is only described (the REST API, which never executes notebook code).

``input_model`` is the pydantic model of a workflow's inputs (from its signature and type
hints; annotations pydantic cannot describe become ``Any``); ``interface`` is the JSON
document a registered code bundle carries (``ops/code.py``)::

    {"description": "first paragraph of the docstring",
     "input_schema": {...}, "output_schema": {...},      # JSON Schema (pydantic's)
     "secret_args": ["api_key"],
     "parameters": [["topic", "POSITIONAL_OR_KEYWORD", false], ...]}  # name, kind, default?

``signature_of(interface)`` rebuilds a signature that binds inputs exactly as the
function's own does, without the function.
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from ..errors import InvalidInputs

if TYPE_CHECKING:
    from .workflow import Workflow

__all__ = [
    "check_inputs",
    "input_model",
    "interface",
    "output_schema",
    "schema_of",
    "signature_of",
]

_NO_DEFAULT = inspect.Parameter.empty
_KINDS = {
    kind.name: kind
    for kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.VAR_KEYWORD,
    )
}
_FILLED = object()
"""Stands for a default value in a rebuilt signature (binding needs only that one exists)."""


def _hints(wf: Workflow[Any, Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(wf.fn, include_extras=True)  # keep Annotated constraints
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


def input_model(wf: Workflow[Any, Any]) -> type[BaseModel]:
    """The pydantic model of ``wf``'s inputs: ``extra="forbid"`` unless it takes
    ``**kwargs``. Fields carry the parameter names as aliases (a parameter may be called
    ``json`` or ``schema``); validate and dump by alias."""
    hints = _hints(wf)
    fields: dict[str, Any] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for i, (pname, param) in enumerate(wf.signature.parameters.items()):
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotation = _usable(hints.get(pname, param.annotation))
        default = ... if param.default is _NO_DEFAULT else param.default
        fields[f"p{i}"] = (annotation, Field(default, alias=pname))
    config = ConfigDict(extra=extra, title=f"{wf.name}_inputs")
    return create_model(f"{wf.name}_inputs", __config__=config, **fields)


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema; ``{"type": "object"}`` when a default cannot be rendered."""
    try:
        return model.model_json_schema()
    except Exception:
        return {"type": "object"}


def output_schema(wf: Workflow[Any, Any]) -> dict[str, Any]:
    """The JSON Schema of ``wf``'s return annotation (``{}``: anything)."""
    returns = _usable(_hints(wf).get("return", wf.signature.return_annotation))
    if returns is Any:
        return {}
    try:
        return TypeAdapter(returns).json_schema()
    except Exception:
        return {}


def interface(wf: Workflow[Any, Any]) -> dict[str, Any]:
    """The interface document of ``wf`` (see the module docstring)."""
    doc = inspect.getdoc(wf.fn) or ""
    return {
        "description": doc.split("\n\n")[0],
        "input_schema": schema_of(input_model(wf)),
        "output_schema": output_schema(wf),
        "secret_args": sorted(wf.secret_args),
        "parameters": [
            [p.name, p.kind.name, p.default is not _NO_DEFAULT]
            for p in wf.signature.parameters.values()
        ],
    }


def signature_of(doc: dict[str, Any]) -> inspect.Signature:
    """A signature binding like the workflow's (``ValueError``, ``KeyError`` or
    ``TypeError`` for a malformed list)."""
    params = []
    for name, kind, has_default in doc["parameters"]:
        default = _FILLED if has_default else _NO_DEFAULT
        params.append(inspect.Parameter(name, _KINDS[kind], default=default))
    return inspect.Signature(params)


def check_inputs(wf: Workflow[Any, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` validated against ``wf``'s input model (its signature and type hints):
    the values as the model has them (``"3"`` for an ``int`` is ``3``; a field of a
    pydantic model type is its instance), by parameter name. ``InvalidInputs`` naming each
    field that does not fit (with ``fields``), e.g. ``n: Input should be a valid integer``
    for ``n='oops'`` and ``n: int``."""
    model = input_model(wf)
    try:
        valid = model.model_validate(inputs)
    except ValidationError as exc:
        fields = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "inputs",
                "message": f"{e['msg']} (got {e['input']!r})"
                if e["type"] not in ("missing", "extra_forbidden")
                else e["msg"],
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        if len(fields) > 5:
            summary += f" (and {len(fields) - 5} more)"
        raise InvalidInputs(f"inputs for workflow {wf.name!r}: {summary}", fields) from None
    values = {
        info.alias or name: getattr(valid, name)
        for name, info in type(valid).model_fields.items()
        if name in valid.model_fields_set
    }
    return {**values, **(valid.model_extra or {})}
