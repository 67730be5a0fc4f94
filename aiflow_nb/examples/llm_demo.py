"""``aiflow demo``: the content agent end to end on the embedded Redis and the local LLM
server (or the real provider when ``OPENAI_API_KEY`` is set), in the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TextIO

import click

from .. import keys
from ..access.handle import RunHandle
from ..events.model import Event
from ..llm.local_server import FakeLLMServer, serve_fake_llm
from ..redaction import shown_url
from ..store import redis_url
from ..trace.totals import span_usage
from .console import print_event
from .content_agent import APPROVAL, content_agent
from .llm import use_fake_llm

__all__ = ["DEMO_KNOBS", "Approver", "run_content_demo", "terminal_approver"]

DEMO_KNOBS = {
    "latency": 0.2,
    "tokens_per_s": 60.0,
    "rate_limit_rate": 0.15,
    "retry_after": 0.5,
    "seed": 7,
}
"""How the demo's local LLM server behaves: a little slow, and a 429 now and then."""


class _Printer:
    """Events as lines; streamed tokens inline, ended by a newline before the next line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.in_text = False

    def __call__(self, event: Event) -> None:
        if event.type == "output.delta":
            if not self.in_text:
                self.out.write("    ")
            self.in_text = True
        elif self.in_text:
            self.out.write("\n")
            self.in_text = False
        print_event(event, self.out)


def _total_cost(handle: RunHandle) -> float:
    return sum(span_usage(s.attributes)[2] for s in handle.spans())


Approver = Callable[[str], bool]
"""Asks a person a yes/no question (the outline's prompt); their answer."""


def terminal_approver() -> Approver | None:
    """``click.confirm`` when stdin is a terminal, else None (the demo then approves by
    itself, saying so)."""
    if not sys.stdin.isatty():
        return None
    return lambda prompt: click.confirm(prompt, default=True)


def _answer(handle: RunHandle, event: Event, ask: Approver | None, out: TextIO) -> None:
    """The run parked at its outline's approval: ask, or approve by ourselves."""
    prompt = str(event.data.get("prompt") or "Approve?")
    if ask is None:
        click.echo(f"{prompt}\nno terminal to ask: approving automatically", file=out)
        ok = True
    else:
        ok = ask(prompt)
    handle.respond(APPROVAL, ok)


def run_content_demo(
    topic: str,
    sections: int = 3,
    out: TextIO | None = None,
    approve: bool = False,
    ask: Approver | None = None,
) -> str:
    """Run the content agent once, printing its live events; return the post. With
    ``approve`` the run parks after its outline until ``ask`` (a person; without one, the
    demo itself) approves or rejects it."""
    out = out or sys.stdout
    server: FakeLLMServer | None = None
    if not os.environ.get("OPENAI_API_KEY"):
        server = serve_fake_llm(**DEMO_KNOBS)  # type: ignore[arg-type]
        use_fake_llm(server.base_url)
        click.echo(
            f"local LLM server on {server.base_url} (set OPENAI_API_KEY for a real one)", file=out
        )
    try:
        handle = content_agent.start(topic=topic, sections=sections, approve=approve)
        click.secho(f"run {handle.run_id}", bold=True, file=out)
        click.echo(f"watch it from elsewhere: aiflow attach {handle.run_id}", file=out)
        printer = _Printer(out)
        for event in handle.events():
            printer(event)
            if event.type == "run.waiting" and event.data.get("name") == APPROVAL:
                _answer(handle, event, ask, out)
        post = str(handle.result())
    finally:
        if server is not None:
            server.stop()
    click.echo(f"\n{post}\n", file=out)
    click.echo(f"LLM cost: ${_total_cost(handle):.6f}", file=out)
    click.echo(
        f"stored in Redis at {shown_url(redis_url())} under {keys.run(handle.run_id)}", file=out
    )
    click.echo(f"re-attach any time with: aiflow attach {handle.run_id}", file=out)
    click.echo("browse runs in the dashboard: aiflow viewer", file=out)
    click.echo("run the demo again: its research step comes from the cache", file=out)
    return post
