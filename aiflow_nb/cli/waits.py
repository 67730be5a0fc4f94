"""Answering parked runs from a terminal: ``aiflow respond``, ``aiflow send``."""

from __future__ import annotations

import click
import orjson

from ..errors import AiflowError
from .core import fail

__all__ = ["parse_value", "register", "respond", "send"]


def parse_value(text: str) -> object:
    """The JSON answer given on the command line (``true``, ``'{"pages": [1, 2]}'``)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not JSON ({exc}); quote strings as JSON, e.g. '\"yes\"'", param_hint="VALUE"
        ) from None


@click.command()
@click.argument("run_id")
@click.argument("name")
@click.argument("value")
def respond(run_id: str, name: str, value: str) -> None:
    """Answer RUN_ID's wait NAME with VALUE (JSON); the run resumes."""
    from ..ops.answer import respond as answer

    try:
        answer(run_id, name, parse_value(value), by="cli")
    except AiflowError as exc:
        fail(exc)
    click.echo(f"answered {name!r} of run {run_id}; it resumes (aiflow attach {run_id})")


@click.command()
@click.argument("run_id")
@click.argument("name")
@click.argument("value", default="null")
def send(run_id: str, name: str, value: str) -> None:
    """Send the signal NAME (VALUE: JSON, default null) to RUN_ID's wait_for_event."""
    from ..ops.answer import send as signal

    try:
        signal(run_id, name, parse_value(value), by="cli")
    except AiflowError as exc:
        fail(exc)
    click.echo(f"sent {name!r} to run {run_id}; it resumes (aiflow attach {run_id})")


def register(group: click.Group) -> None:
    for command in (respond, send):
        group.add_command(command)
