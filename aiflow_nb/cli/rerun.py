"""``aiflow rerun``: queue a rerun of a finished run (``ops/fork.py``), optionally follow it."""

from __future__ import annotations

from typing import Any

import click
import orjson

from ..errors import AiflowError
from .core import attach, fail

__all__ = ["parse_inputs", "parse_steps", "register", "rerun"]


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, Any] | None:
    """``--input k=v`` pairs as inputs: each value JSON when it reads as JSON (``3``,
    ``true``, ``'[1, 2]'``), else the text itself; None when there are none."""
    if not pairs:
        return None
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--input")
        try:
            inputs[name.strip()] = orjson.loads(text)
        except orjson.JSONDecodeError:
            inputs[name.strip()] = text
    return inputs


def parse_steps(text: str | None) -> list[str] | None:
    """``--steps a,b`` as a list of step names; None when not given."""
    if text is None:
        return None
    steps = [s.strip() for s in text.split(",") if s.strip()]
    if not steps:
        raise click.BadParameter("name at least one step (a,b)", param_hint="--steps")
    return steps


@click.command()
@click.argument("run_id")
@click.option(
    "--steps",
    default=None,
    metavar="A,B",
    help="Components (or step keys) that execute even though the source replays them.",
)
@click.option(
    "--input",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Replace one of the source's inputs (VALUE: JSON, else text; repeatable).",
)
@click.option("--follow", is_flag=True, help="Follow the new run until it ends (as attach).")
@click.pass_context
def rerun(
    ctx: click.Context, run_id: str, steps: str | None, pairs: tuple[str, ...], follow: bool
) -> None:
    """Rerun the finished run RUN_ID: a new run of its workflow (current code) that
    replays each step still valid and executes what changed. Prints the new run id;
    with --follow, exits as attach does (0 completed, 3 failed, 4 cancelled)."""
    from ..ops.fork import fork

    inputs, chosen = parse_inputs(pairs), parse_steps(steps)
    try:
        new_id = fork(run_id, inputs, chosen)
    except AiflowError as exc:
        fail(exc)
    click.echo(new_id)
    if follow:
        ctx.invoke(attach, run_id=new_id)
    else:
        click.echo(f"follow it with: aiflow attach {new_id}", err=True)


def register(group: click.Group) -> None:
    group.add_command(rerun)
