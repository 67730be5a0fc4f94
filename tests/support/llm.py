"""Helpers of the LLM-layer tests: the local LLM server (real uvicorn in a thread) and
clients pointed at it. Fixtures live in the test modules that use them."""

from __future__ import annotations

from typing import Any

import aiflow_nb as af
from aiflow_nb.events.model import Event
from aiflow_nb.llm import FakeLLMServer, serve_fake_llm


def fake_llm(**knobs: Any) -> FakeLLMServer:
    """The local LLM server, started (instant tokens unless ``knobs`` say otherwise); use it
    in a ``with`` block, which stops it."""
    return serve_fake_llm(**{"tokens_per_s": 0.0, **knobs})


def events_of(handle: af.RunHandle, type_: str | None = None) -> list[Event]:
    return [e for e in handle.events(follow=False) if type_ is None or e.type == type_]


def llm_spans(handle: af.RunHandle) -> list[af.Span]:
    return [s for s in handle.spans() if s.attributes.get("gen_ai.operation.name")]


def served(server: FakeLLMServer, status: int | None = None) -> list[dict[str, Any]]:
    return [r for r in server.llm.requests if status is None or r.get("status") == status]


class Waits:
    """An injected sleep that records the waits and does not sleep."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
