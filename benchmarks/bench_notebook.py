"""Widget update cost: kernel CPU of a 10,000-event run while a live ``RunWidget`` shows
it, against the same run undisplayed, both measured in one real Jupyter kernel.

The kernel runs the in-kernel worker (the default when no out-of-kernel worker is live),
so its CPU includes executing the run and writing its events; the widget's comm messages
really leave through the kernel's iopub channel (this benchmark is the frontend that
receives them). Target: displayed / undisplayed <= 1.5x.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from ._common import Figure, private_redis

__all__ = ["main"]

EVENTS = 10_000
REPEAT = 3

SETUP = """
import asyncio, json, time
import aiflow_nb as af
from aiflow_nb.notebook import RunWidget
from IPython.display import display

@af.component
async def chatter(n: int) -> int:
    for i in range(n):
        af.progress(i + 1, n, "step")
        if i % 20 == 0:
            await asyncio.sleep(0.002)   # spread the run over ~1-2 s, as a live run is
    return n

@af.workflow
async def noisy(n: int) -> int:
    return await chatter(n)

noisy.run(n=100)   # start the in-kernel worker and warm everything up

def measure(displayed: bool, n: int) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    handle = noisy.start(n=n)
    if displayed:
        w = RunWidget(handle)
        display(w)
        w.wait(120)
        redraws = w.redraws
    else:
        handle.wait(120)
        redraws = 0
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    events = sum(1 for _ in handle.events(follow=False))
    return {"cpu": cpu, "wall": wall, "events": events, "redraws": redraws}
"""


def _execute(kc: Any, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, output_hook=hook, timeout=300)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel cell failed: {reply['content']}")
    return "".join(out)


def _measure() -> dict[str, list[dict[str, float]]]:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        _execute(kc, SETUP)
        results: dict[str, list[dict[str, float]]] = {"plain": [], "widget": []}
        for _ in range(REPEAT):
            for mode in ("plain", "widget"):
                text = _execute(kc, f"print(json.dumps(measure({mode == 'widget'}, {EVENTS})))")
                results[mode].append(json.loads(text.strip().splitlines()[-1]))
        return results
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> list[Figure]:
    with private_redis():
        results = _measure()
    plain = statistics.median(r["cpu"] for r in results["plain"])
    shown = statistics.median(r["cpu"] for r in results["widget"])
    events = statistics.median(r["events"] for r in results["widget"])
    redraws = statistics.median(r["redraws"] for r in results["widget"])
    wall = statistics.median(r["wall"] for r in results["widget"])
    return [
        Figure("kernel CPU, 10k-event run, undisplayed", plain, "s"),
        Figure(
            "kernel CPU, 10k-event run, live widget",
            shown,
            "s",
            baseline=plain,
            baseline_name="undisplayed",
            target="<= 1.5x",
            met=shown <= 1.5 * plain,
        ),
        Figure(
            "widget redraws for the run",
            redraws,
            "redraws",
            target=f"<< {events:.0f} events",
            met=redraws < events / 10,
        ),
        Figure("wall time of the displayed run", wall, "s"),
    ]
