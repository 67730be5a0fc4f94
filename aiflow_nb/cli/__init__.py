"""The ``aiflow`` command. Each feature adds its commands in a module of its own,
listed in ``COMMAND_MODULES``; each module exposes ``register(group)``."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from ..version import __version__
from . import exits

__all__ = ["COMMAND_MODULES", "cli", "main", "not_utf8"]

COMMAND_MODULES = [
    "aiflow_nb.cli.api",
    "aiflow_nb.cli.core",
    "aiflow_nb.cli.llm",
    "aiflow_nb.cli.rerun",
    "aiflow_nb.cli.retention",
    "aiflow_nb.cli.viewer",
    "aiflow_nb.cli.waits",
    "aiflow_nb.cli.worker",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=exits.HELP)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
@click.version_option(__version__, "-V", "--version", prog_name="aiflow")
def cli(verbose: bool) -> None:
    """aiflow-nb: resilient, long-running LLM workflows."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(cli)


def not_utf8(argv: list[str]) -> str | None:
    """The first argument that is not valid UTF-8 (Python decodes such bytes to lone
    surrogates), shown with its bad bytes escaped; None when all are."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(arg).decode("utf-8", "backslashreplace")
    return None


def main() -> None:
    """Entry point of the ``aiflow`` console script."""
    bad = not_utf8(sys.argv[1:])
    if bad is not None:
        click.secho(
            "Usage: aiflow [OPTIONS] COMMAND [ARGS]...\nTry 'aiflow --help' for help.\n\n"
            f"Error: argument '{bad}' is not valid UTF-8; give names and ids as UTF-8 text.",
            err=True,
        )
        sys.exit(exits.USAGE)
    cli(prog_name="aiflow")
