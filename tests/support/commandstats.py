"""What Redis itself counted (``INFO commandstats``): the commands a piece of code made it
run, a script's own commands included."""

from __future__ import annotations

from aiflow_nb.store import sync_redis


def calls() -> dict[str, int]:
    """Calls so far, by command (lower case)."""
    stats = sync_redis().info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def commands_since(before: dict[str, int]) -> dict[str, int]:
    """The commands run since ``before`` (``calls()``), by command; INFO left out."""
    after = calls()
    counts = {name: n - before.get(name, 0) for name, n in after.items() if name != "info"}
    return {name: n for name, n in counts.items() if n}
