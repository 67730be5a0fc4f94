"""The demo workflow: several components with a retry, a cache hit and progress events."""

from __future__ import annotations

import asyncio

import click

from .. import keys
from ..authoring.component import component
from ..authoring.workflow import workflow
from ..runtime.emit import progress
from ..store import redis_url
from .console import print_event

__all__ = ["demo_pipeline", "run_demo"]

_failures: dict[str, int] = {}


@component(retry=dict(attempts=3, initial=0.2))
def research(topic: str) -> list[str]:
    """Fails once (a simulated outage), then succeeds on its retry."""
    if _failures.setdefault(topic, 0) < 1:
        _failures[topic] += 1
        raise ConnectionError("simulated provider outage")
    return [f"why {topic} matters", f"how {topic} works", f"where {topic} goes next"]


@component(cache=3600)
async def outline(topic: str, notes: list[str]) -> list[str]:
    """Cached across runs: the second demo run hits the cache."""
    await asyncio.sleep(0.2)
    return [n.capitalize() for n in notes]


@component
async def draft(section: str) -> str:
    for i in range(4):
        await asyncio.sleep(0.1)
        progress(i + 1, 4, f"drafting {section!r}")
    return f"{section}: a paragraph."


@workflow
async def demo_pipeline(topic: str) -> str:
    notes = research(topic)
    sections = await outline(topic, notes)
    parts = await asyncio.gather(*(draft(s) for s in sections))
    return "\n".join(parts)


def run_demo(topic: str) -> str:
    """Run the demo twice (the second run hits the cache); print live events."""
    output = ""
    for attempt in (1, 2):
        handle = demo_pipeline.start(topic=topic)
        click.secho(f"\nrun {attempt}: {handle.run_id}", bold=True)
        for event in handle.events():
            print_event(event)
        output = handle.result()
    click.echo(f"\noutput:\n{output}\n")
    click.echo(f"stored in Redis at {redis_url()} under {keys.run(handle.run_id)}")
    click.echo(f"re-attach any time with: aiflow attach {handle.run_id}")
    return str(output)
