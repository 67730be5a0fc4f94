"""How ``__all__`` lists are sorted in this tree: ruff's RUF022 order."""

from __future__ import annotations

import re

__all__ = ["ruff_order"]


def ruff_order(name: str) -> tuple[int, list[int | str]]:
    """RUF022's isort-style key: SCREAMING_CASE, then CamelCase, then the rest, each in
    natural order (``a2`` before ``a10``)."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
