"""JSON in and out (orjson), with errors that say what could not be stored."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from .errors import SerializationError

__all__ = ["canonical", "digest", "dumps", "loads"]

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


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


def canonical(value: Any, what: str = "value") -> bytes:
    """Serialise with sorted keys, so equal values give equal bytes (for cache keys)."""
    try:
        return orjson.dumps(value, option=_OPTS | orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise SerializationError(f"{what} is not JSON-serialisable ({exc})") from None


def digest(data: bytes | str, length: int = 16) -> str:
    """A short hex sha256 of ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:length]
