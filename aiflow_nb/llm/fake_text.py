"""What the local LLM server writes: deterministic text derived from the prompt.

- A prompt holding a list (two or more lines starting ``-``, ``*`` or ``1.``) is answered
  with a deterministic subset (about 80 %) of its items, one ``- item`` per line: enough
  for "pick the pages worth reading" to work without a real model.
- Any other prompt is answered with sentences made of the prompt's own words and a few
  fillers, 40 to 80 tokens long, cut at ``max_tokens``.

One token is one word (with its leading space); ``count_tokens`` counts the same way.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

__all__ = [
    "FILLER",
    "KEEP_PERCENT",
    "Completion",
    "complete",
    "count_tokens",
    "embed",
    "prompt_text",
]

_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(.+?)\s*$", re.M)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]{2,}")
FILLER = (
    "the",
    "system",
    "keeps",
    "every",
    "step",
    "durable",
    "while",
    "a",
    "person",
    "watches",
    "its",
    "progress",
    "and",
    "results",
    "arrive",
    "in",
    "order",
)
KEEP_PERCENT = 80


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def prompt_text(messages: Any) -> str:
    """The text of chat ``messages`` / responses ``input`` (strings, parts or lists)."""
    if messages is None:
        return ""
    if isinstance(messages, str):
        return messages
    if isinstance(messages, dict):
        if "content" in messages:
            return prompt_text(messages["content"])
        return str(messages.get("text") or "")
    if isinstance(messages, list):
        return "\n".join(t for t in (prompt_text(m) for m in messages) if t)
    return str(messages)


def count_tokens(text: str) -> int:
    """Tokens in ``text`` as this server counts them (whitespace-separated words)."""
    return len(text.split())


class Completion:
    """The tokens of one answer and why it ended (``stop`` or ``length``)."""

    def __init__(self, tokens: list[str], finish_reason: str) -> None:
        self.tokens = tokens
        self.finish_reason = finish_reason

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def _list_answer(items: list[str], seed: int) -> list[str]:
    kept = [i for i in items if _seed(f"{seed}:{i}") % 100 < KEEP_PERCENT] or items[:1]
    tokens: list[str] = []
    for n, item in enumerate(kept):
        words = f"- {item}".split()
        tokens.extend(
            ("\n" if n else "") + words[0] if i == 0 else " " + w for i, w in enumerate(words)
        )
    return tokens


def _prose(prompt: str, rng: random.Random) -> list[str]:
    vocab = list(dict.fromkeys(w.lower() for w in _WORD.findall(prompt)))[:60] or list(FILLER)
    tokens: list[str] = []
    target = rng.randint(40, 80)
    sentence = 0
    while len(tokens) < target:
        n = rng.randint(6, 12)
        words = [rng.choice(vocab) if rng.random() < 0.7 else rng.choice(FILLER) for _ in range(n)]
        words[0] = words[0].capitalize()
        words[-1] += "."
        sep = "\n\n" if sentence and sentence % 4 == 0 else " "
        tokens.extend(
            (sep if (i == 0 and tokens) else (" " if i else "")) + w for i, w in enumerate(words)
        )
        sentence += 1
    return tokens


def complete(prompt: str, max_tokens: int | None = None) -> Completion:
    """The deterministic answer to ``prompt``."""
    seed = _seed(prompt)
    items = _ITEM.findall(prompt)
    tokens = _list_answer(items, seed) if len(items) >= 2 else _prose(prompt, random.Random(seed))
    if max_tokens is not None and len(tokens) > max_tokens:
        return Completion(tokens[:max_tokens], "length")
    return Completion(tokens, "stop")


def embed(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    rng = random.Random(_seed(text))
    vec = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 6) for v in vec]
