"""Pydantic models built from JSON Schema: how the API validates a notebook workflow's
inputs from the schema its kernel registered, without importing or executing its code.

Covers what pydantic writes for type hints: ``type`` (one or a list), ``properties`` /
``required`` / ``additionalProperties``, ``items`` / ``prefixItems``, ``enum``, ``const``,
``anyOf`` / ``oneOf`` / a one-member ``allOf``, ``$ref`` into ``$defs`` and the usual
constraints (lengths, bounds, ``multipleOf``, ``pattern``). Anything else, and a ``$ref``
that recurses, accepts any value. Every field carries its JSON name as its alias::

    model = model_from_schema("greet_inputs", {"type": "object", "properties":
        {"who": {"type": "string"}}, "required": ["who"], "additionalProperties": False})
    model.model_validate({"who": "nb"}).model_dump(by_alias=True)  # {'who': 'nb'}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = ["model_from_schema"]

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}
_CONSTRAINTS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
    "pattern": "pattern",
}
_NAME = re.compile(r"[^A-Za-z0-9_]")


def model_from_schema(title: str, schema: dict[str, Any]) -> type[BaseModel]:
    """The model of an object schema (``properties``; none: any object)."""
    return _Builder(schema.get("$defs") or {}).model(title, schema)


def _constrained(base: Any, schema: dict[str, Any]) -> Any:
    found = {arg: schema[key] for key, arg in _CONSTRAINTS.items() if key in schema}
    return Annotated[base, Field(**found)] if found else base


def _literal(values: list[Any]) -> Any:
    if values and all(isinstance(v, str | int | float | bool) or v is None for v in values):
        return Literal[tuple(values)]
    return Any


class _Builder:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs if isinstance(defs, dict) else {}
        self.done: dict[str, Any] = {}
        self.resolving: set[str] = set()

    def model(self, title: str, schema: dict[str, Any]) -> type[BaseModel]:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        fields: dict[str, Any] = {}
        for i, (name, prop) in enumerate(props.items()):
            default = ... if name in required else _default(prop)
            fields[f"p{i}"] = (self.type_of(prop), Field(default, alias=str(name)))
        extra: Literal["allow", "forbid"] = (
            "forbid" if schema.get("additionalProperties") is False else "allow"
        )
        name = _NAME.sub("_", title)[:100] or "Object"
        config = ConfigDict(extra=extra, title=title)
        return create_model(name, __config__=config, **fields)

    def type_of(self, schema: Any) -> Any:
        if not isinstance(schema, dict) or not schema:
            return Any
        if "$ref" in schema:
            return self._ref(schema["$ref"])
        if "const" in schema:
            return _literal([schema["const"]])
        if "enum" in schema:
            return _literal(schema["enum"] if isinstance(schema["enum"], list) else [])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return Union[tuple(self.type_of(s) for s in schema[key])]  # noqa: UP007
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            return self.type_of(all_of[0])
        kind = schema.get("type")
        if isinstance(kind, list) and kind:
            return Union[tuple(self.type_of({**schema, "type": k}) for k in kind)]  # noqa: UP007
        if kind in _SCALARS:
            return _constrained(_SCALARS[kind], schema)
        if kind == "array":
            return self._array(schema)
        if kind == "object":
            return self._object(schema)
        return Any

    def _ref(self, ref: Any) -> Any:
        name = str(ref).rsplit("/", 1)[-1]
        if name in self.done:
            return self.done[name]
        target = self.defs.get(name)
        if target is None or name in self.resolving:  # unknown or recursive: anything
            return Any
        self.resolving.add(name)
        try:
            found = self.type_of(target)
        finally:
            self.resolving.discard(name)
        self.done[name] = found
        return found

    def _array(self, schema: dict[str, Any]) -> Any:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:  # a tuple: fixed length, else a list
            if schema.get("maxItems") == len(prefix) == schema.get("minItems"):
                return tuple[tuple(self.type_of(s) for s in prefix)]  # type: ignore[misc]
            return list[Any]
        return _constrained(list[self.type_of(schema.get("items"))], schema)  # type: ignore[misc]

    def _object(self, schema: dict[str, Any]) -> Any:
        if isinstance(schema.get("properties"), dict):
            return self.model(str(schema.get("title") or "Object"), schema)
        values = schema.get("additionalProperties")
        return dict[str, self.type_of(values) if isinstance(values, dict) else Any]  # type: ignore[misc]


def _default(prop: Any) -> Any:
    return prop.get("default") if isinstance(prop, dict) else None
