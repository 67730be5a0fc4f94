"""The ``aiflow`` command's exit codes (``aiflow --help`` lists them)."""

from __future__ import annotations

__all__ = ["ERROR", "HELP", "OK", "RUN_CANCELLED", "RUN_FAILED", "USAGE"]

OK = 0
"""Done (``aiflow attach``: the run completed)."""
ERROR = 1
"""Could not be done: Redis unreachable, no such run, a run in a state that refuses it
(``aiflow cancel`` of a run that already ended, ``aiflow resume`` of a completed one)."""
USAGE = 2
"""Bad command line: an unknown command or option, an invalid value, non-UTF-8 text."""
RUN_FAILED = 3
"""``aiflow attach``: the run failed."""
RUN_CANCELLED = 4
"""``aiflow attach``: the run was cancelled."""

HELP = (
    "Exit codes: 0 done (attach: the run completed); 1 error (Redis unreachable, no such "
    "run, a run that refuses the action, e.g. cancel of a run that already ended); 2 usage "
    "error; 3 attach: the run failed; 4 attach: the run was cancelled."
)
"""The exit codes in one paragraph, for the command's help."""
