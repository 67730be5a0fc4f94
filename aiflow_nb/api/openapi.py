"""The OpenAPI spec, with every workflow as an endpoint of its own.

The generic ``/workflows/{name}/start`` and ``/run`` operations are copied to
``/workflows/<name>/start`` and ``/run`` for each workflow, with the request body's schema
derived from the workflow's signature. The spec is rebuilt on each request, so workflows
registered from a notebook after the server started appear too.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..errors import AiflowError
from . import catalog

__all__ = ["DESCRIPTION", "install_openapi", "json_body"]

_URL_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
DESCRIPTION = """Every workflow as an endpoint: start runs (202) or run them and wait,
stream their events (SSE or NDJSON, resumable with `Last-Event-ID`), read, cancel, and hand
out scoped read tokens. Errors are JSON: `{error, message, status[, fields]}`."""


def json_body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    """A route's ``openapi_extra`` declaring a JSON request body of ``schema`` (routes
    that read their body themselves, so FastAPI cannot derive it)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _refs_into(value: Any, prefix: str) -> Any:
    """``value`` with each ``#/$defs/X`` reference turned into ``#/components/schemas/
    <prefix>X``."""
    if isinstance(value, dict):
        out = {k: _refs_into(v, prefix) for k, v in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = f"#/components/schemas/{prefix}{ref.removeprefix('#/$defs/')}"
        return out
    if isinstance(value, list):
        return [_refs_into(v, prefix) for v in value]
    return value


def _workflow_schema(entry: catalog.Entry) -> tuple[dict[str, Any], dict[str, Any]]:
    """(body schema, component schemas) with refs pointing into components/schemas: the
    entry's input schema (a notebook workflow's as its kernel registered it)."""
    prefix = f"{entry.name}__"
    schema = _refs_into(entry.input_schema, prefix)
    defs = schema.pop("$defs", None)
    defs = defs if isinstance(defs, dict) else {}
    return schema, {f"{prefix}{k}": v for k, v in defs.items()}


def _specialise(op: dict[str, Any], name: str, suffix: str, body: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(op)
    new["parameters"] = [p for p in new.get("parameters", []) if p.get("name") != "name"]
    new["operationId"] = f"{suffix}_workflow_{name}"
    new["summary"] = f"{op.get('summary', suffix)}: {name}"
    new["tags"] = [f"workflow: {name}"]
    new["requestBody"] = {
        "required": bool(body.get("required")),
        "content": {"application/json": {"schema": body}},
    }
    return new


def _add_workflows(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    generic = {s: paths.get(f"/workflows/{{name}}/{s}", {}).get("post") for s in ("start", "run")}
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in catalog.names():
        if not _URL_SAFE.match(name):
            continue
        try:
            entry = catalog.get(name)
        except AiflowError:
            continue
        body, defs = _workflow_schema(entry)
        components.update(defs)
        for suffix, op in generic.items():
            if op is not None:
                paths[f"/workflows/{name}/{suffix}"] = {"post": _specialise(op, name, suffix, body)}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` list each workflow's own endpoints."""

    def openapi() -> dict[str, Any]:
        spec = get_openapi(
            title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes
        )
        _add_workflows(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
