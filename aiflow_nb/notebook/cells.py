"""What a ``%%component`` / ``%%workflow`` cell turns into: checked source text.

A cell must compile and define exactly one top-level function (imports, constants and
other statements may sit beside it). Its registered source is the cell itself plus a
generated prelude and closing line, so that executing the registered sources in order in
a fresh module (what a worker does) defines the same component as the kernel did::

    from aiflow_nb import component as __aiflow_component__
    <the cell>
    NAME = __aiflow_component__(fn, name='NAME', retry={'attempts': 4})
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import CellError

__all__ = ["CellSource", "ComponentOptions", "WorkflowOptions", "build_source", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str, what: str) -> float:
    """``"90"``, ``"1.5s"``, ``"10m"``, ``"1h"``, ``"7d"`` -> seconds (> 0)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise CellError(
            f"{what} must be a positive duration like 30, 1.5s, 10m, 1h or 7d; got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class ComponentOptions:
    """The policies a ``%%component`` line asks for, as ``component(...)`` arguments."""

    retries: int | None = None
    backoff: str | None = None
    cache: float | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.retries is not None and self.retries < 0:
            raise CellError(f"--retries must be >= 0, got {self.retries}")
        if self.backoff not in (None, "exponential", "fixed"):
            raise CellError(f"--backoff must be exponential or fixed, got {self.backoff!r}")
        if self.backoff is not None and not self.retries:
            raise CellError("--backoff needs --retries N (N >= 1)")

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``component()``; ``--retries N`` means N+1 attempts."""
        args: dict[str, Any] = {}
        if self.retries:
            retry: dict[str, Any] = {"attempts": self.retries + 1}
            if self.backoff:
                retry["backoff"] = self.backoff
            args["retry"] = retry
        if self.cache is not None:
            args["cache"] = self.cache
        if self.timeout is not None:
            args["timeout"] = self.timeout
        return args


@dataclass(frozen=True)
class WorkflowOptions:
    """What a ``%%workflow`` line asks for, as ``workflow(...)`` arguments."""

    retention: float | None = None
    """Seconds its finished runs are kept (``--retention 12h``)."""

    def arguments(self) -> dict[str, Any]:
        return {} if self.retention is None else {"retention": self.retention}


@dataclass(frozen=True)
class CellSource:
    """A checked cell: the one function it defines and the source to execute and register."""

    kind: str
    name: str
    function: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)


def _check_name(name: str, kind: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CellError(f"%%{kind} NAME must be a Python identifier, got {name!r}")


def _the_function(cell: str, kind: str, name: str) -> str:
    try:
        tree = ast.parse(cell, filename=f"%%{kind} {name}")
    except SyntaxError as exc:
        raise CellError(
            f"%%{kind} {name}: the cell does not compile: {exc.msg} "
            f"(line {exc.lineno}); nothing was registered"
        ) from None
    defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defs:
        raise CellError(
            f"%%{kind} {name}: the cell defines no function; define exactly one "
            "(def or async def); nothing was registered"
        )
    if len(defs) > 1:
        raise CellError(
            f"%%{kind} {name}: the cell defines {len(defs)} functions "
            f"({', '.join(defs)}); define exactly one per cell; nothing was "
            "registered"
        )
    return defs[0]


def build_source(
    kind: str,
    name: str,
    cell: str,
    options: ComponentOptions | WorkflowOptions | None = None,
) -> CellSource:
    """Check ``cell`` and build its registered source (``CellError`` when it cannot work)."""
    if kind not in ("component", "workflow"):
        raise ValueError(f"kind must be component or workflow, got {kind!r}")
    expected = ComponentOptions if kind == "component" else WorkflowOptions
    if options is not None and not isinstance(options, expected):
        raise ValueError(f"a {kind} cell takes {expected.__name__}, got {options!r}")
    _check_name(name, kind)
    fn = _the_function(cell, kind, name)
    args = options.arguments() if options is not None else {}
    alias = f"__aiflow_{kind}__"
    extra = "".join(f", {k}={v!r}" for k, v in args.items())
    source = (
        f"from aiflow_nb import {kind} as {alias}\n"
        f"{cell.rstrip()}\n"
        f"{name} = {alias}({fn}, name={name!r}{extra})\n"
    )
    try:
        compile(source, f"%%{kind} {name}", "exec")
    except SyntaxError as exc:  # e.g. a cell ending inside an open bracket
        raise CellError(
            f"%%{kind} {name}: the cell does not compile: {exc.msg}; nothing was registered"
        ) from None
    return CellSource(kind=kind, name=name, function=fn, source=source, options=args)
