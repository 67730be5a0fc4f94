"""Masking of secrets, applied where events and records are written (and again, as a
defence in depth, in every REST response).

Three things are masked as ``***``:
- values under a workflow's (or component's) ``secret_args`` names;
- values under keys that name a credential (``api_key``, ``password``, ``token``,
  ``authorization``, ``*_key``, ``*_secret``, ``*_token``, ...), wherever they appear;
- the literal text of known secrets anywhere in a string: the values those names hold,
  the provider keys in the environment (``*_API_KEY``), ``AIFLOW_SECRET``, the API keys;
  so one echoed in another argument, an output, an error message, a traceback or a log
  line does not leak either.

Example::

    red = Redactor.from_environment().for_inputs(["token"], {"token": "hunter2-long"})
    red.apply({"message": "auth failed for hunter2-long"})  # {"message": "auth failed for ***"}
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

__all__ = [
    "MASK",
    "MIN_LITERAL",
    "Redactor",
    "environment_secrets",
    "is_sensitive_key",
    "masked_inputs",
    "may_name_credentials",
    "secret_literals",
    "shown_url",
]

MASK = "***"
_SENSITIVE = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "credentials",
        "client_secret",
        "access_token",
        "refresh_token",
        "x_api_key",
        "private_key",
    }
)
_SUFFIXES = ("_key", "_password", "_passwd", "_secret", "_token", "_credentials")
_ENDS = ("_key", "-key", "apikey", "authorization", "password", "passwd", "passphrase") + (
    "secret",
    "token",
    "credentials",
)
"""How every credential-like key ends, lower-cased: a JSON document with no key ending so
(nor a secret name as a key) has no key to mask."""
_LONGEST_END = max(map(len, _ENDS))
_ENDS_BYTES = tuple(end.encode() for end in _ENDS)
_KEYED_ENDS = tuple(end + b'":' for end in _ENDS_BYTES)
"""The ends as they appear in compact JSON (orjson's): a key's end then ``":``."""
_FEW_KEYS = 3
"""A document with at most this many keys is checked key by key (a step's arguments,
often), one with more by a search of the whole document per end (in C, whatever the
number of keys)."""
MIN_LITERAL = 4
"""Characters; shorter secret values are masked by key only (masking "ab" everywhere would
garble text)."""


def may_name_credentials(doc: bytes) -> bool:
    """Whether the compact JSON ``doc`` (orjson's) may hold a credential-named key; False
    is certain (substring searches, no parsing)."""
    at = doc.find(b'":')
    if at < 0:
        return False  # no key at all: a scalar, a list of scalars
    if doc.count(b'":', at) > _FEW_KEYS:
        low = doc.lower()
        return any(end in low for end in _KEYED_ENDS)
    while at >= 0:  # each key's end (a string's ``":`` is only a false alarm: True)
        if doc[max(0, at - _LONGEST_END) : at].lower().endswith(_ENDS_BYTES):
            return True
        at = doc.find(b'":', at + 2)
    return False


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Whether ``key`` names a credential (case and ``-``/``_`` insensitive)."""
    norm = key.lower().replace("-", "_")
    return norm in _SENSITIVE or norm.endswith(_SUFFIXES)


def shown_url(url: str) -> str:
    """``url`` as it may be shown (a notebook's status line, an error message, the
    dashboard, a log line): its password, and the value of a credential-named query
    argument (``?password=``), replaced by ``***``; the user name, hosts and the rest as
    given (``redis://app:***@10.0.0.11:6379/0``). A URL too malformed to parse (an
    unclosed ``[``) keeps nothing between ``://`` and its last ``@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        head, sep, rest = url.partition("://")
        return f"{head}{sep}{MASK}@{rest.rpartition('@')[2]}" if "@" in rest else url
    userinfo, at, hosts = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hosts}" if colon else parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_sensitive_key(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_sensitive_key(k) else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def environment_secrets(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Provider keys (``*_API_KEY``) and ``AIFLOW_SECRET`` from the environment, plus extra."""
    extra = tuple(extra)
    found = _environment_literals()
    return _longest_first((*found, *extra)) if extra else found


_scanned: tuple[dict[Any, Any], tuple[str, ...]] | None = None
"""The environment as last scanned (a copy of its raw variables) and the secrets found."""


def _environment_literals() -> tuple[str, ...]:
    """``environment_secrets()`` of the environment, scanned again only when it changed
    (every run's writer and every submit ask; comparing the raw variables with the copy
    is done in C, mostly by identity, the scan decodes every variable)."""
    global _scanned
    raw = getattr(os.environ, "_data", None)  # CPython's: the undecoded variables
    done = _scanned
    if isinstance(raw, dict) and done is not None and done[0] == raw:
        return done[1]
    found = _longest_first(
        v for k, v in os.environ.items() if (k.endswith("_API_KEY") or k == "AIFLOW_SECRET") and v
    )
    if isinstance(raw, dict):
        _scanned = (dict(raw), found)
    return found


_from_environment: tuple[tuple[str, ...], Redactor] | None = None
"""The last scan's secrets and the ``Redactor.from_environment()`` made of them."""


def _remember_environment(literals: tuple[str, ...], redactor: Redactor) -> None:
    global _from_environment
    _from_environment = (literals, redactor)


def _longest_first(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({s for s in values if len(s) >= MIN_LITERAL}, key=len, reverse=True))


def _leaves(value: Any) -> Iterable[str]:
    """The text of every string and integer inside ``value``."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)


def secret_literals(names: Iterable[str], inputs: Any) -> list[str]:
    """The secret text ``inputs`` holds: every string (or integer) under one of ``names``
    at its top level, or under a credential-named key at any depth."""
    top = frozenset(names)
    found: list[str] = []

    def walk(value: Any, level: int) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and ((level == 0 and k in top) or is_sensitive_key(k)):
                    found.extend(_leaves(v))
                else:
                    walk(v, level + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, level + 1)

    walk(inputs, 0)
    return [s for s in found if len(s) >= MIN_LITERAL]


class Redactor:
    """Masks secret names and values in JSON-like documents. Immutable: ``for_inputs``
    and ``with_literals`` return new ones."""

    def __init__(self, names: Iterable[str] = (), literals: Iterable[str] = ()) -> None:
        self.names = frozenset(names)
        self.literals = _longest_first(literals)
        self._known = frozenset(self.literals)
        self._needles = tuple(orjson.dumps(s)[1:-1] for s in self.literals)
        self._names = tuple(orjson.dumps(n) + b":" for n in sorted(self.names))
        self.known = bool(self._needles or self._names)
        """There is a known secret (a literal, a secret name) to look for."""

    @classmethod
    def from_environment(cls, extra: Iterable[str] = ()) -> Redactor:
        """Credential-named keys, plus the environment's secrets (``environment_secrets``)."""
        extra = tuple(extra)
        literals = environment_secrets(extra)
        if extra:
            return cls(literals=literals)
        made = _from_environment
        if made is not None and made[0] is literals:  # the same scan: it is immutable
            return made[1]
        redactor = cls(literals=literals)
        _remember_environment(literals, redactor)
        return redactor

    def knows(self, literal: str) -> bool:
        return literal in self._known or len(literal) < MIN_LITERAL

    def with_literals(self, literals: Iterable[str]) -> Redactor:
        """A copy that also masks ``literals`` wherever they appear in text."""
        return Redactor(self.names, (*self.literals, *literals))

    def for_inputs(self, secret_args: Iterable[str], inputs: Any) -> Redactor:
        """A copy that also masks ``secret_args`` and the text held by them and by
        credential-named keys in ``inputs`` (``secret_literals``)."""
        names = frozenset(secret_args)
        found = secret_literals(names, inputs)
        if not found and names <= self.names:
            return self  # nothing to add (most runs): it is immutable
        return Redactor(self.names | names, (*self.literals, *found))

    def may_hold(self, payload: bytes) -> bool:
        """Whether the JSON document ``payload`` may hold something to mask (a literal,
        a masked key); False is certain, so ``apply`` can be skipped."""
        if self.known and self.may_hold_known(payload):
            return True
        return b'":' in payload and may_name_credentials(payload)  # no key: no call

    def may_hold_known(self, payload: bytes) -> bool:
        """``may_hold`` without the credential-named keys (for a caller that checked
        those already): a known secret's text, or a ``secret_args`` name."""
        for needle in self._needles:
            if needle in payload:
                return True
        for name in self._names:
            if name in payload:
                return True
        return False

    def _masked(self, key: Any) -> bool:
        return isinstance(key, str) and (key in self.names or is_sensitive_key(key))

    def apply(self, value: Any) -> Any:
        """``value`` with secrets masked (a new object; the input is not changed)."""
        if isinstance(value, dict):
            return {
                (self.apply(k) if isinstance(k, str) else k): (
                    MASK if v is not None and self._masked(k) else self.apply(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.apply(v) for v in value]
        if isinstance(value, str) and self.literals:
            for secret in self.literals:
                if secret in value:
                    value = value.replace(secret, MASK)
        return value

    def split_stream(self, text: str) -> tuple[str, str]:
        """``text`` (a stream's text not yet written) masked, and cut where a secret may
        begin that the next chunk would complete: (what may be written now, what to hold
        back until then). A secret split across two ``output.delta`` chunks is masked too.

        Example: with the literal ``"hunter2-long"``, ``split_stream("pw: hunt")`` is
        ``("pw: ", "hunt")``; ``split_stream("hunt" + "er2-long!")`` is ``("***!", "")``."""
        masked = self.apply(text)
        cut = len(masked)  # where the held-back end starts
        for secret in self.literals:  # the earliest start of a proper prefix at the end
            at = masked.find(secret[0], max(0, len(masked) - len(secret) + 1))
            while at != -1 and at < cut:
                if secret.startswith(masked[at:]):
                    cut = at
                    break
                at = masked.find(secret[0], at + 1)
        return masked[:cut], masked[cut:]


def masked_inputs(inputs: Any, secret_args: Iterable[str], redactor: Redactor | None = None) -> Any:
    """``inputs`` with their secrets masked (``redactor`` plus ``secret_args`` and the text
    they hold), or None when they hold no secret: what a run's record keeps once it ended."""
    red = (redactor or Redactor.from_environment()).for_inputs(secret_args, inputs)
    public = red.apply(inputs)
    return None if public == inputs else public
