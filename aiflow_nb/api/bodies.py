"""Request bodies as JSON values the rest of the system can hold exactly.

``parse_body`` reads a JSON body (orjson) and refuses, with an ``ApiError``:

- text that is not JSON: 400 ``malformed_json``;
- nesting deeper than ``API_MAX_NESTING`` levels (the body itself is level 1): 422
  ``too_deep`` (orjson writes at most 255 levels; validating and storing a deeper value
  would fail further in, or recurse past Python's limit);
- an integer outside ``API_INT_MIN`` .. ``API_INT_MAX`` (signed / unsigned 64 bits): 422
  ``integer_out_of_range``; orjson would read it as a float and lose its digits;
- a number past a double (``1e400``) or a lone surrogate escape (``"\\ud800"``, in a value
  or a key): 400 ``malformed_json``, on either parser (the stdlib one would read them as
  ``inf``, stored as ``null``, and as text no UTF-8 encoder can write).

Example::

    parse_body(b'{"n": 123456789012345678901234567890}')  # ApiError 422, never 1.2e+29
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from .. import defaults
from .errors import ApiError

__all__ = ["check_value", "parse_body"]

_LONG_DIGITS = re.compile(rb"[0-9]{19,}")
"""Digit runs long enough to be an integer past 64 bits (-2**63 has 19 digits)."""


def _malformed(exc: Exception) -> ApiError:
    return ApiError(400, "malformed_json", f"the request body is not valid JSON: {exc}")


def _too_deep() -> ApiError:
    return ApiError(
        422,
        "too_deep",
        f"the request body nests lists and objects more than {defaults.API_MAX_NESTING} "
        "levels deep; flatten the input",
    )


def _out_of_range(digits: int) -> ApiError:
    low, high = defaults.API_INT_MIN, defaults.API_INT_MAX
    return ApiError(
        422,
        "integer_out_of_range",
        f"the request body holds a {digits}-digit integer; integers must lie "
        f"between {low} and {high} (64 bits); send larger numbers as strings",
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is infinity when parsed as double")
    return value


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > 20:  # refused before converting: int() of 5,000 digits is slow, or refused
        raise _out_of_range(digits)
    return int(text)


def _exact(body: bytes) -> Any:
    """The stdlib parser: slower, but integers stay exact (orjson makes long ones floats)."""
    try:
        value = json.loads(body, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise _malformed(exc) from None
    check_value(value)
    try:  # what orjson refuses to read (a lone surrogate) it refuses to write too
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise _malformed(exc) from None
    return value


def parse_body(body: bytes) -> Any:
    """The JSON value of ``body``, checked by ``check_value``; ``ApiError`` otherwise."""
    if _LONG_DIGITS.search(body):  # maybe an integer orjson would round: read it exactly
        return _exact(body)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise _too_deep() from None
        raise _malformed(exc) from None
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """``ApiError`` 422 when ``value`` nests too deep or holds an integer past 64 bits.
    Iterative, so a hostile value cannot exhaust the stack."""
    low, high, limit = defaults.API_INT_MIN, defaults.API_INT_MAX, defaults.API_MAX_NESTING
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise _too_deep()
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, int) and not isinstance(item, bool) and not low <= item <= high:
            raise _out_of_range(len(str(abs(item))))
