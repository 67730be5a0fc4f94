"""Redaction of secrets in everything the API sends: run records and events.

Three things are masked as ``***``:
- values under a workflow's ``secret_args`` names;
- values under keys that name a credential (``api_key``, ``authorization``, ``password``,
  ``*_secret``, ...), wherever they appear;
- the literal text of known secrets anywhere in a string (a secret input's value, the
  provider keys in the environment such as ``OPENAI_API_KEY``, ``AIFLOW_SECRET``, the API
  keys), so one echoed in an error message or a traceback does not leak either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "Redactor", "environment_secrets", "is_sensitive_key"]

MASK = "***"
_SENSITIVE = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "access_token",
        "refresh_token",
        "x_api_key",
        "private_key",
    }
)
_SUFFIXES = ("_api_key", "_password", "_secret", "_private_key")
_MIN_LITERAL = 4
"""Characters; shorter secret values are masked by key only (masking "ab" everywhere would
garble text)."""


def is_sensitive_key(key: str) -> bool:
    norm = key.lower().replace("-", "_")
    return norm in _SENSITIVE or norm.endswith(_SUFFIXES)


def environment_secrets(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Provider keys (``*_API_KEY``) and ``AIFLOW_SECRET`` from the environment, plus extra."""
    found = [
        v for k, v in os.environ.items() if (k.endswith("_API_KEY") or k == "AIFLOW_SECRET") and v
    ]
    found.extend(extra)
    return tuple(sorted({s for s in found if len(s) >= _MIN_LITERAL}, key=len, reverse=True))


class Redactor:
    """Masks secret names and values in JSON-like documents."""

    def __init__(self, names: Iterable[str] = (), literals: Iterable[str] = ()) -> None:
        self.names = frozenset(names)
        self.literals = tuple(
            sorted({s for s in literals if len(s) >= _MIN_LITERAL}, key=len, reverse=True)
        )

    def for_inputs(self, secret_args: Iterable[str], inputs: Any) -> Redactor:
        """A copy that also masks ``secret_args`` and the string values they hold in ``inputs``."""
        names = set(secret_args)
        values = [
            str(inputs[n])
            for n in names
            if isinstance(inputs, dict) and isinstance(inputs.get(n), str | int)
        ]
        return Redactor(self.names | names, (*self.literals, *values))

    def _masked(self, key: Any) -> bool:
        return isinstance(key, str) and (key in self.names or is_sensitive_key(key))

    def apply(self, value: Any) -> Any:
        """``value`` with secrets masked (a new object; the input is not changed)."""
        if isinstance(value, dict):
            return {
                k: (MASK if self._masked(k) and v is not None else self.apply(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.apply(v) for v in value]
        if isinstance(value, str) and self.literals:
            for secret in self.literals:
                if secret in value:
                    value = value.replace(secret, MASK)
        return value
