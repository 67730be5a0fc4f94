"""How listing commands print: a table with a header row and aligned columns for people,
one JSON document (``--json``) for scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
import orjson

__all__ = ["json_option", "print_json", "print_table", "table"]

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (stable fields) instead."
)
"""The ``--json`` flag of a listing command."""


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[str] = ()) -> str:
    """``rows`` under ``headers``, each column as wide as its widest cell (the last one is
    not padded); the columns named in ``right`` are right-aligned (numbers)."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if header in right else cell.ljust(width)
            for cell, width, header in zip(row, widths, headers, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[str] = ()
) -> None:
    click.echo(table(headers, rows, right))


def print_json(doc: Any) -> None:
    """``doc`` as one indented JSON document (keys in the order given)."""
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
