"""A tiny fixture website for the onboarding-ingestion demo, served on loopback.

``/`` links to ``pages`` documentation pages (worth reading) and a few pages that are not
(login, careers, legal); each page is a little HTML with a title and paragraphs.

Example::

    with serve_site(pages=50) as site:
        onboard_site.run(site_url=site.url)
"""

from __future__ import annotations

import hashlib
import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from ..serving import ServerThread

__all__ = ["OTHER", "TOPICS", "SiteServer", "create_site", "serve_site"]

TOPICS = (
    "install",
    "quickstart",
    "components",
    "workflows",
    "retries",
    "caching",
    "streams",
    "workers",
    "resume",
    "rate limits",
    "dashboard",
    "deployments",
    "notebooks",
    "api",
)
OTHER = {"/login": "Log in", "/careers": "Careers", "/legal/privacy": "Privacy policy"}


def _title(n: int) -> str:
    return f"{TOPICS[n % len(TOPICS)].capitalize()} guide, part {n // len(TOPICS) + 1}"


def _page(title: str, n: int) -> str:
    seed = hashlib.sha256(title.encode()).hexdigest()
    topic = TOPICS[n % len(TOPICS)]
    paras = [
        f"This page explains {topic} in aiflow-nb ({seed[:8]}). "
        f"It covers how {topic} keeps long-running LLM workflows reliable.",
        f"Section {n}: configure {topic}, watch it live, and recover from failures.",
    ]
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def create_site(pages: int = 20) -> FastAPI:
    """The ASGI app of a site with ``pages`` documentation pages."""
    if pages < 1:
        raise ValueError(f"pages must be >= 1, got {pages}")
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    links = {f"/docs/page-{n}": _title(n) for n in range(pages)} | OTHER

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        items = "".join(f'<li><a href="{p}">{html.escape(t)}</a></li>' for p, t in links.items())
        return f"<html><head><title>Docs</title></head><body><ul>{items}</ul></body></html>"

    @app.get("/docs/page-{n}", response_class=HTMLResponse)
    async def page(n: int) -> HTMLResponse:
        if not 0 <= n < pages:
            return HTMLResponse("not found", status_code=404)
        return HTMLResponse(_page(_title(n), n))

    @app.get("/{path:path}", response_class=HTMLResponse)
    async def other(path: str) -> HTMLResponse:
        title = OTHER.get(f"/{path}")
        if title is None:
            return HTMLResponse("not found", status_code=404)
        return HTMLResponse(f"<html><body><h1>{title}</h1></body></html>")

    return app


class SiteServer(ServerThread):
    """The fixture site in a thread (already started; ``with`` stops it at the end)."""

    def __enter__(self) -> SiteServer:
        return self if self._thread.is_alive() else self.start()  # type: ignore[return-value]


def serve_site(pages: int = 20, port: int = 0) -> SiteServer:
    """Start the fixture site on a loopback port (``.url``; ``.stop()`` or ``with``)."""
    server = SiteServer(create_site(pages), port=port or None)
    server.start()
    return server
