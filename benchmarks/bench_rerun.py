"""Rerun benchmark (issue 14): a 12-step workflow whose steps each wait 50 ms (standing in
for an LLM call) runs, then is rerun with one step named (``steps=[<its key>]``): the
rerun's wall time (submit to result) against the first run's, measured in the same
process, in-process worker, private Redis. Median of 3 trials each. Target: the rerun
takes at most a quarter of the first run (it executes 1 step of 12; the rest replay).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from ._common import Figure, private_redis

STEPS = 12
STEP_SECONDS = 0.05
TRIALS = 3


def _workflow() -> Any:
    import aiflow_nb as af

    @af.component
    def bench_step(i: int) -> dict[str, int]:
        time.sleep(STEP_SECONDS)
        return {"i": i, "value": i * i}

    @af.workflow
    def bench_twelve(n: int) -> int:
        return sum(bench_step(i)["value"] for i in range(n))

    return bench_twelve


def main() -> list[Figure]:
    import aiflow_nb as af

    with private_redis():
        wf = _workflow()
        wf.run(n=1)  # warm: the in-process worker, connections
        firsts, reruns, saved = [], [], 0
        for _ in range(TRIALS):
            t0 = time.perf_counter()
            first = wf.start(n=STEPS)
            first.result(timeout=60)
            firsts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = af.rerun(first, steps=["bench_twelve/bench_step#6"])
            again.result(timeout=60)
            reruns.append(time.perf_counter() - t0)
            saved = sum(1 for s in again.spans() if s.replayed)
        first_s, rerun_s = statistics.median(firsts), statistics.median(reruns)
    ratio = rerun_s / first_s
    return [
        Figure("12-step run, wall time", first_s * 1000, "ms"),
        Figure(
            f"rerun with 1 step named ({saved} replayed)",
            rerun_s * 1000,
            "ms",
            baseline=first_s * 1000,
            baseline_name="the first run",
            target="<= 0.25x",
            met=ratio <= 0.25,
        ),
    ]
