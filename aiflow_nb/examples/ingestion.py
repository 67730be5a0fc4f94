"""Onboarding ingestion: given a site URL, an LLM call picks the pages worth reading, then a
scrape-and-summarise fan-out makes one LLM call per page under the shared rate limit,
publishing each page's status as it goes.

Example::

    from aiflow_nb.examples.ingestion import onboard_site
    from aiflow_nb.examples.site import serve_site

    site = serve_site(pages=100)
    handle = onboard_site.start(site_url=site.url, max_pages=50)
    handle.result(timeout=120)["pages"]
"""

from __future__ import annotations

import asyncio
import html
import re
import weakref
from typing import Any
from urllib.parse import urljoin

import httpx

from ..authoring.component import component
from ..authoring.workflow import workflow
from ..runtime.emit import progress, publish
from .llm import llm_client, llm_model

__all__ = [
    "FETCHES",
    "choose_pages",
    "fetch_index",
    "ingest_page",
    "onboard_site",
    "scrape",
    "summarise",
]

_LINK = re.compile(r'<a href="([^"]+)">(.*?)</a>', re.S)
_TAG = re.compile(r"<[^>]+>")
FETCHES = 8
"""Pages fetched at once (politeness to the site; LLM calls are paced by the rate limit)."""
_http: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


def _client() -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
    loop = asyncio.get_running_loop()
    pair = _http.get(loop)
    if pair is None:
        limits = httpx.Limits(max_connections=FETCHES, max_keepalive_connections=FETCHES)
        pair = _http[loop] = (
            httpx.AsyncClient(timeout=30, limits=limits),
            asyncio.Semaphore(FETCHES),
        )
    return pair


async def _get(url: str) -> str:
    client, slots = _client()
    async with slots:
        reply = await client.get(url)
    reply.raise_for_status()
    return reply.text


@component(retry=dict(attempts=3, initial=0.2))
async def fetch_index(site_url: str) -> list[dict[str, str]]:
    """The site's links: ``[{"path", "title"}]``."""
    page = await _get(site_url)
    return [
        {"path": p, "title": html.unescape(_TAG.sub("", t)).strip()} for p, t in _LINK.findall(page)
    ]


@component
async def choose_pages(site_url: str, links: list[dict[str, str]]) -> list[str]:
    """Ask the LLM which pages are worth reading to learn the product; keep known paths."""
    listing = "\n".join(f"- {link['path']} : {link['title']}" for link in links)
    reply = await llm_client().chat.completions.create(
        model=llm_model(),
        messages=[
            {
                "role": "system",
                "content": "You pick the pages worth reading to learn a product. "
                "Answer with the chosen lines only, one per line.",
            },
            {"role": "user", "content": f"Pages of {site_url}:\n{listing}"},
        ],
    )
    text = reply.choices[0].message.content or ""
    known = [link["path"] for link in links]
    mentioned = set(re.findall(r"/[\w./-]+", text))
    return [p for p in known if p in mentioned]


@component(retry=dict(attempts=3, initial=0.2))
async def scrape(url: str) -> str:
    """The page's visible text."""
    page = await _get(url)
    return " ".join(html.unescape(_TAG.sub(" ", page)).split())[:4000]


@component
async def summarise(url: str, text: str) -> str:
    """A two-sentence summary of one page."""
    reply = await llm_client().chat.completions.create(
        model=llm_model(),
        max_tokens=60,
        messages=[
            {"role": "system", "content": "Summarise the page in two sentences."},
            {"role": "user", "content": f"{url}\n\n{text}"},
        ],
    )
    return reply.choices[0].message.content or ""


@component
async def ingest_page(url: str) -> dict[str, str]:
    """Scrape and summarise one page, publishing its status at each stage."""
    publish("page", {"url": url, "status": "scraping"})
    text = await scrape(url)
    publish("page", {"url": url, "status": "summarising"})
    summary = await summarise(url, text)
    publish("page", {"url": url, "status": "done"})
    return {"url": url, "summary": summary}


@workflow
async def onboard_site(site_url: str, max_pages: int = 500) -> dict[str, Any]:
    """Pick the pages worth reading on ``site_url`` and summarise up to ``max_pages`` of them."""
    links = await fetch_index(site_url)
    chosen = (await choose_pages(site_url, links))[:max_pages]
    progress(0, len(chosen), f"{len(chosen)} of {len(links)} pages chosen")
    done = 0

    async def one(path: str) -> dict[str, str]:
        nonlocal done
        result = await ingest_page(urljoin(site_url, path))
        done += 1
        progress(done, len(chosen), f"summarised {path}")
        return result

    pages = await asyncio.gather(*(one(p) for p in chosen))
    return {
        "site": site_url,
        "links": len(links),
        "pages": len(pages),
        "summaries": {p["url"]: p["summary"] for p in pages},
    }
