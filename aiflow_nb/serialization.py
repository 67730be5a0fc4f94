"""JSON in and out (orjson), with errors that say what could not be stored.

``encode_value`` is the strict form for the values a run stores and gives back (its
inputs and output, step results): what JSON cannot hold faithfully is refused with the
path to it — NaN and infinities, dict keys that are not strings, integers beyond 64
bits — and a value over ``AIFLOW_MAX_VALUE_BYTES`` raises ``ValueTooLarge``. Other
conversions are the documented JSON round trip (docs/values.md): tuples become lists,
datetimes ISO 8601 strings, dataclasses dicts, numpy arrays lists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from typing import Any

import orjson

from .errors import SerializationError, ValueTooLarge

__all__ = ["DUMPS_OPTIONS", "Naming", "canonical", "digest", "dumps", "encode_value", "loads"]

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
DUMPS_OPTIONS = _OPTS
"""``dumps``' orjson options, for a hot path that calls ``orjson.dumps`` itself (one call
less per document) and ``dumps`` only to raise its error."""
_STRICT = orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any, what: str = "value") -> bytes:
    """Serialise ``value``; ``what`` names it in the error (e.g. "input 'x' of workflow 'w'")."""
    try:
        return orjson.dumps(value, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise SerializationError(
            f"{what} is not JSON-serialisable ({exc}); pass plain data "
            "(dict, list, str, int, float, bool, None) or convert it first"
        ) from None


def loads(data: bytes | str | None) -> Any:
    """Parse JSON; ``None`` stays ``None``."""
    return None if data is None else orjson.loads(data)


Naming = str | Callable[[], str]
"""What a value is, for an error message: the words, or a function making them (a hot
path then formats them only when there is an error to say it in)."""


def _named(what: Naming) -> str:
    return what if isinstance(what, str) else what()


def canonical(value: Any, what: Naming = "value") -> bytes:
    """Serialise with sorted keys, so equal values give equal bytes (for cache keys)."""
    try:
        return orjson.dumps(value, option=_OPTS | orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise SerializationError(f"{_named(what)} is not JSON-serialisable ({exc})") from None


def digest(data: bytes | str, length: int = 16) -> str:
    """A short hex sha256 of ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:length]


def encode_value(value: Any, what: Naming, limit: int | None = None) -> bytes:
    """The JSON of a value a run stores (``what`` names it in errors): refuses what JSON
    cannot round-trip faithfully (NaN/infinity, non-str keys, ints beyond 64 bits, types
    JSON lacks) with ``SerializationError`` naming the path, and more than ``limit``
    bytes with ``ValueTooLarge``."""
    try:
        data = orjson.dumps(value, option=_STRICT)
    except (TypeError, orjson.JSONEncodeError) as exc:
        where, reason = _locate(value, "") or ("", str(exc))
        raise SerializationError(
            f"{_named(what)} is not JSON-serialisable: {reason}{' at ' + where if where else ''}; "
            "pass plain data (dict with str keys, list, str, int, float, bool, None) "
            "or convert it first"
        ) from None
    if b"null" in data:  # orjson writes NaN and infinities as null: find one, if any
        bad = _non_finite(value, "")
        if bad is not None:
            raise SerializationError(
                f"{_named(what)} holds a NaN or infinite float{' at ' + bad if bad else ''}, "
                "which JSON cannot represent (it would come back as None); "
                "replace it (None, a string, a sentinel) first"
            )
    if limit is not None and len(data) > limit:
        raise ValueTooLarge(_named(what), len(data), limit)
    return data


def _items(value: Any) -> list[tuple[str, Any]] | None:
    """A container's (path step, child) pairs; None for a leaf."""
    if isinstance(value, dict):
        return [(f"[{k!r}]", v) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f".{f.name}", getattr(value, f.name)) for f in dataclasses.fields(value)]
    return None


def _non_finite(value: Any, path: str) -> str | None:
    """The path to the first NaN or infinite float in ``value``, else None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind in ("f", "c") and hasattr(value, "shape"):
        import numpy

        return None if bool(numpy.isfinite(value).all()) else path
    for step, child in _items(value) or ():
        found = _non_finite(child, path + step)
        if found is not None:
            return found
    return None


def _locate(value: Any, path: str) -> tuple[str, str] | None:
    """Where ``value`` stops being JSON, and why (None when orjson takes it)."""
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                return path or "the top level", (
                    f"dict key {key!r} ({type(key).__name__}) is not a str "
                    "(JSON object keys are strings)"
                )
    items = _items(value)
    if items is None:
        try:
            orjson.dumps(value, option=_STRICT)
        except (TypeError, orjson.JSONEncodeError) as exc:
            return path or "the top level", f"{type(value).__name__} ({exc})"
        return None
    for step, child in items:
        found = _locate(child, path + step)
        if found is not None:
            return found
    return None
