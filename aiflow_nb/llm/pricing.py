"""What LLM calls cost: a price table in USD per million tokens, extensible by the user.

Example::

    from aiflow_nb.llm import pricing
    pricing.set_price("my-finetune", input=0.30, output=1.20)
    pricing.cost("gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=200)

A model is priced by its longest known prefix, so dated snapshots
(``gpt-4o-mini-2024-07-18``) take the price of their family. Prices are the providers'
public list prices when this table was written; set your own where they differ.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Price", "cost", "price_of", "prices", "set_price"]


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens."""

    input: float
    output: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input", "output"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(
                    f"price {name} must be a number >= 0 (USD / 1M tokens), got {value!r}"
                )


_lock = threading.Lock()
_table: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "text-embedding-3-small": Price(0.02),
    "text-embedding-3-large": Price(0.13),
    "text-embedding-ada-002": Price(0.10),
}


def set_price(model: str, input: float, output: float = 0.0) -> Price:
    """Price ``model`` (and models it prefixes) at ``input``/``output`` USD per 1M tokens."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"a price needs a model name, got {model!r}")
    price = Price(input, output)
    with _lock:
        _table[model] = price
    return price


def prices() -> dict[str, Price]:
    """A copy of the price table."""
    with _lock:
        return dict(_table)


def price_of(model: str | None) -> Price | None:
    """The price of ``model`` by its longest known prefix, or None."""
    if not model:
        return None
    with _lock:
        best = max((m for m in _table if model.startswith(m)), key=len, default=None)
        return _table[best] if best else None


def cost(model: str | None, input_tokens: int, output_tokens: int = 0) -> float | None:
    """USD for the tokens of one call, or None when the model has no price."""
    price = price_of(model)
    if price is None:
        return None
    return round((input_tokens * price.input + output_tokens * price.output) / 1e6, 10)
