"""The ``aiflow`` command. Each feature adds its commands in a module of its own,
listed in ``COMMAND_MODULES``; each module exposes ``register(group)``."""

from __future__ import annotations

import importlib
import logging

import click

__all__ = ["COMMAND_MODULES", "cli", "main"]

COMMAND_MODULES = [
    "aiflow_nb.cli.api",
    "aiflow_nb.cli.core",
    "aiflow_nb.cli.llm",
    "aiflow_nb.cli.retention",
    "aiflow_nb.cli.viewer",
    "aiflow_nb.cli.waits",
    "aiflow_nb.cli.worker",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def cli(verbose: bool) -> None:
    """aiflow-nb: resilient, long-running LLM workflows."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(cli)


def main() -> None:
    """Entry point of the ``aiflow`` console script."""
    cli(prog_name="aiflow")
