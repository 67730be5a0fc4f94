"""A local OpenAI-compatible server for demos, notebooks and tests (no API key needed).

Serves ``/v1/chat/completions`` (streaming or not), ``/v1/responses`` (streaming or not),
``/v1/embeddings`` and ``/v1/models`` with deterministic text derived from the prompt
(see ``fake_text``), and misbehaves on request: latency, token speed, injected 5xx and
429s (with ``Retry-After`` and ``retry-after-ms``), its own requests-per-minute limit, and
outages. Knobs change at runtime (``FakeLLM.set`` or ``POST /_aiflow/knobs``); every
request is logged (``FakeLLM.requests`` or ``GET /_aiflow/requests``).

Example::

    from aiflow_nb.llm import serve_fake_llm, OpenAI

    with serve_fake_llm(latency=0.05) as server:
        client = OpenAI(base_url=server.base_url, api_key="unused")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        server.llm.set(outage=503)          # every request now answers 503
        server.llm.requests                 # what the server saw
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .. import defaults
from .fake_protocol import chat_body, embeddings_body, responses_body, sse_chat, sse_responses
from .fake_text import complete, count_tokens, prompt_text

__all__ = ["FakeLLM", "Knobs", "create_app"]


@dataclass(frozen=True)
class Knobs:
    """How the server behaves. Rates are fractions in [0, 1]; times in seconds."""

    latency: float = 0.0
    """Seconds before the first token (and before a non-streamed answer)."""
    tokens_per_s: float = defaults.FAKE_LLM_TOKENS_PER_S
    """Generation speed; 0 writes every token at once."""
    error_rate: float = 0.0
    """Fraction of requests answered with ``error_status``."""
    error_status: int = 500
    rate_limit_rate: float = 0.0
    """Fraction of requests answered 429 with ``Retry-After: retry_after``."""
    retry_after: float = 1.0
    rpm: float | None = None
    """Requests accepted per sliding minute; beyond it, 429 with the wait until a slot frees."""
    outage: int | None = None
    """When set, every request (for ``outage_models``, or all) answers this status."""
    outage_models: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("latency", "tokens_per_s", "retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 400 <= self.error_status <= 599 or (
            self.outage is not None and not 400 <= self.outage <= 599
        ):
            raise ValueError("error_status and outage must be HTTP error statuses (400-599)")
        if self.rpm is not None and self.rpm <= 0:
            raise ValueError(f"rpm must be > 0, got {self.rpm!r}")
        object.__setattr__(self, "outage_models", tuple(self.outage_models))


@dataclass
class FakeLLM:
    """The server's state: its knobs and the log of every request it answered."""

    knobs: Knobs = field(default_factory=Knobs)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _accepted: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.knobs.seed)

    def set(self, **changes: Any) -> Knobs:
        """Change knobs (unknown names: ``ValueError``); return the knobs in force."""
        known = {f.name for f in fields(Knobs)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown knob(s) {sorted(unknown)}; known: {sorted(known)}")
        with self._lock:
            self.knobs = replace(self.knobs, **changes)
            if "seed" in changes:
                self._rng = random.Random(self.knobs.seed)
        return self.knobs

    def reset(self) -> None:
        """Forget the request log and the rpm window."""
        with self._lock:
            self.requests.clear()
            self._accepted.clear()

    def log(self, path: str, **fields_: Any) -> dict[str, Any]:
        entry = {"ts": time.time(), "path": path, **fields_}
        with self._lock:
            self.requests.append(entry)
        return entry

    def verdict(self, model: str | None) -> tuple[int, float | None]:
        """(status, retry_after seconds) this request gets before any work is done."""
        k = self.knobs
        with self._lock:
            if k.outage is not None and (not k.outage_models or model in k.outage_models):
                return k.outage, None
            now = time.time()
            window = self._accepted
            while window and window[0] <= now - 60:
                window.popleft()
            if k.rpm is not None and len(window) >= k.rpm:
                return 429, max(0.001, window[0] + 60 - now)
            if self._rng.random() < k.rate_limit_rate:
                return 429, k.retry_after
            if self._rng.random() < k.error_rate:
                return k.error_status, None
            window.append(now)
        return 200, None


def _error(status: int, retry_after: float | None) -> JSONResponse:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    body = {"error": {"message": f"fake-llm: injected {status}", "type": kind, "code": kind}}
    headers = {}
    if retry_after is not None:
        headers = {
            "retry-after": str(max(1, math.ceil(retry_after))),
            "retry-after-ms": str(int(retry_after * 1000)),
        }
    return JSONResponse(body, status_code=status, headers=headers)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _invalid(message: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return JSONResponse(body, status_code=400)


async def _admit(
    llm: FakeLLM, path: str, body: Any, required: str
) -> tuple[dict[str, Any], Response | None]:
    """Log the request; answer the refusal it gets (bad request, outage, 429, 5xx), if any."""
    if not isinstance(body, dict) or not body.get("model") or not body.get(required):
        entry = llm.log(path, model=None, stream=False, status=400)
        return entry, _invalid(f"'model' and {required!r} are required")
    model = body.get("model")
    entry = llm.log(path, model=model, stream=bool(body.get("stream")))
    status, retry_after = llm.verdict(model)
    entry["status"] = status
    if status != 200:
        entry["retry_after"] = retry_after
        return entry, _error(status, retry_after)
    if llm.knobs.latency:
        await asyncio.sleep(llm.knobs.latency)
    return entry, None


def create_app(llm: FakeLLM | None = None) -> FastAPI:
    """The ASGI app; its state is ``app.state.llm`` (a ``FakeLLM``)."""
    app = FastAPI(title="aiflow fake LLM", docs_url=None, redoc_url=None)
    app.state.llm = llm = llm or FakeLLM()

    async def generate(request: Request, path: str, required: str) -> Response:
        body = await _json(request)
        entry, refusal = await _admit(llm, path, body, required)
        if refusal is not None:
            return refusal
        chat = path == "/v1/chat/completions"
        prompt = prompt_text(
            body.get("messages") if chat else [body.get("instructions"), body.get("input")]
        )
        limit = (
            (body.get("max_completion_tokens") or body.get("max_tokens"))
            if chat
            else body.get("max_output_tokens")
        )
        answer = complete(prompt, limit)
        usage = (count_tokens(prompt), len(answer.tokens))
        entry["input_tokens"], entry["output_tokens"] = usage
        tps = llm.knobs.tokens_per_s
        if body.get("stream") and chat:
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return sse_chat(body["model"], answer, usage, include, tps)
        if body.get("stream"):
            return sse_responses(body["model"], answer, usage, tps)
        if tps > 0 and answer.tokens:
            await asyncio.sleep(len(answer.tokens) / tps)
        entry["end"] = time.time()
        make = chat_body if chat else responses_body
        return JSONResponse(make(body["model"], answer, usage))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await generate(request, "/v1/chat/completions", "messages")

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        return await generate(request, "/v1/responses", "input")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body = await _json(request)
        entry, refusal = await _admit(llm, "/v1/embeddings", body, "input")
        if refusal is not None:
            return refusal
        doc = embeddings_body(body)
        entry["input_tokens"] = doc["usage"]["prompt_tokens"]
        return JSONResponse(doc)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        names = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "aiflow-fake"} for n in names
            ],
        }

    @app.get("/_aiflow/knobs")
    async def get_knobs() -> dict[str, Any]:
        return asdict(llm.knobs)

    @app.post("/_aiflow/knobs")
    async def set_knobs(request: Request) -> Response:
        try:
            knobs = llm.set(**(await request.json()))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": {"message": str(exc)}}, status_code=422)
        return JSONResponse(asdict(knobs))

    @app.get("/_aiflow/requests")
    async def get_requests(since: float = 0.0) -> list[dict[str, Any]]:
        return [r for r in list(llm.requests) if r["ts"] > since]

    @app.post("/_aiflow/reset")
    async def reset() -> dict[str, bool]:
        llm.reset()
        return {"reset": True}

    return app
