"""Content agent: research -> outline -> each section written with streamed tokens -> post.

Every status message and token is an event of the run, so a person can leave and
re-attach (``aiflow attach RUN_ID``, ``aiflow_nb.attach(run_id)``) and see everything so far.
Research is cached across runs; LLM calls retry rate limits with the provider's
Retry-After.

Example::

    from aiflow_nb.examples.content_agent import content_agent
    handle = content_agent.start(topic="durable LLM workflows")
    for event in handle.events():
        ...
"""

from __future__ import annotations

import re

from ..authoring.component import component
from ..authoring.workflow import workflow
from ..runtime.emit import progress, publish
from ..runtime.waits import wait_for_input
from .llm import llm_client, llm_model

__all__ = ["APPROVAL", "content_agent", "outline", "research", "titles_from", "write_section"]


def _lines(text: str) -> list[str]:
    """Items of a list answer, or the sentences of prose (bullets and numbers stripped)."""
    parts = []
    for line in text.splitlines():
        line = re.sub(r"^\d+[.)]\s*", "", line.strip().lstrip("-*\u2022 ")).strip()
        parts += [s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
    return parts


def titles_from(text: str, count: int) -> list[str]:
    """Up to ``count`` short titles from an LLM answer (lines, else sentences)."""
    titles = [" ".join(ln.rstrip(".").split()[:8]) for ln in _lines(text)]
    return [t[:1].upper() + t[1:] for t in titles if t][:count]


async def _ask(prompt: str, max_tokens: int, system: str) -> str:
    reply = await llm_client().chat.completions.create(
        model=llm_model(),
        max_tokens=max_tokens,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
    )
    return reply.choices[0].message.content or ""


@component(cache=24 * 3600)
async def research(topic: str) -> list[str]:
    """Key points about ``topic`` (cached across runs for a day)."""
    publish("status", f"researching {topic!r}")
    text = await _ask(
        f"List five key facts about {topic}, one per line.", 120, "You are a careful researcher."
    )
    return titles_from(text, 5)


@component
async def outline(topic: str, notes: list[str], sections: int) -> list[str]:
    """Section titles for the post, one per line."""
    publish("status", "outlining")
    listing = "\n".join(f"- {n}" for n in notes)
    text = await _ask(
        f"Choose {sections} section titles for a post about {topic} from "
        f"these notes, one per line:\n{listing}",
        80,
        "You are an editor.",
    )
    titles = titles_from(text, sections)
    titles += [n for n in notes if n not in titles][: sections - len(titles)]
    return titles + [f"Part {n}" for n in range(len(titles) + 1, sections + 1)]


@component
async def write_section(topic: str, title: str, notes: list[str]) -> str:
    """One section, streamed token by token (each token is an ``output.delta`` event)."""
    publish("status", f"writing {title!r}")
    stream = await llm_client().chat.completions.create(
        model=llm_model(),
        max_tokens=80,
        stream=True,
        messages=[
            {"role": "system", "content": "You write clear technical prose."},
            {
                "role": "user",
                "content": f"Write the section {title!r} of a post about "
                f"{topic}. Notes: {'; '.join(notes)}",
            },
        ],
    )
    parts = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


APPROVAL = "approve_outline"
"""The wait the agent parks at for a person's yes/no on its outline (``approve=True``)."""


@workflow
async def content_agent(topic: str, sections: int = 3, approve: bool = False) -> str:
    """Research ``topic``, outline ``sections`` sections, write each, assemble the post.
    With ``approve``, the run parks after the outline until a person approves it
    (``wait_for_input("approve_outline", bool)``); a rejected outline ends the run."""
    notes = await research(topic)
    titles = await outline(topic, notes, sections)
    if approve:
        listing = "\n".join(f"  - {t}" for t in titles)
        if not wait_for_input(APPROVAL, bool, prompt=f"Write this outline?\n{listing}"):
            publish("status", "outline rejected")
            return "outline rejected: nothing written"
    progress(0, len(titles), "sections written")
    body = []
    for n, title in enumerate(titles, 1):
        body.append(f"## {title}\n\n{await write_section(topic, title, notes)}")
        progress(n, len(titles), "sections written")
    publish("status", "done")
    return f"# {topic[:1].upper() + topic[1:]}\n\n" + "\n\n".join(body)
