"""Run the benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks core api``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from ._common import report


def main(argv: list[str]) -> None:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or n.removeprefix("bench_") in argv or n in argv]
    if not wanted:
        sys.exit(f"no benchmark matches {argv}; have: {', '.join(names)}")
    for name in wanted:
        print(f"== {name}", flush=True)
        report(importlib.import_module(f"benchmarks.{name}").main())


if __name__ == "__main__":
    main(sys.argv[1:])
