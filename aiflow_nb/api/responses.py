"""The JSON response class of the API (orjson, so outputs like numpy values serialise)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ..serialization import dumps

__all__ = ["JSONBody"]


class JSONBody(Response):
    """``application/json`` rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content, "response body")
