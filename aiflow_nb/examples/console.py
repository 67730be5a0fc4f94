"""Plain-terminal rendering of events (for ``aiflow demo`` and ``aiflow attach``)."""

from __future__ import annotations

import sys
from typing import TextIO

import click

from ..events.model import Event

__all__ = ["print_event"]

_COLORS = {
    "completed": "green",
    "failed": "red",
    "retrying": "yellow",
    "cached": "cyan",
    "replayed": "cyan",
    "cancelled": "red",
    "resumed": "magenta",
}


def print_event(event: Event, out: TextIO | None = None) -> None:
    """One line per event; ``output.delta`` text is written inline."""
    out = out or sys.stdout
    d = event.data
    if event.type == "output.delta":
        out.write(d.get("text", ""))
        out.flush()
        return
    kind = event.type.split(".")[-1]
    color = _COLORS.get(kind)
    label = click.style(f"{event.type:<15}", fg=color) if color else f"{event.type:<15}"
    detail = ""
    if event.type == "progress":
        detail = f"{d.get('done')}/{d.get('total')} {d.get('message', '')}"
    elif event.type == "span.retrying":
        err = d.get("error") or {}
        detail = (
            f"attempt {event.attempt} failed ({err.get('type')}: {err.get('message')}); "
            f"waiting {d.get('wait', 0):.2f}s"
        )
    elif event.type in ("span.failed", "run.failed"):
        err = d.get("error") or {}
        detail = f"{err.get('type')}: {err.get('message')}"
    elif event.type == "publish":
        detail = f"{d.get('label')}: {d.get('value')}"
    elif event.type == "log":
        detail = str(d.get("message", ""))
    click.echo(f"{event.id:<18} {label} {event.name or '':<18} {detail}", file=out)
