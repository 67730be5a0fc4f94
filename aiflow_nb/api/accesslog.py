"""Scoped run tokens never reach the access log.

A browser ``EventSource`` sends its token as ``?token=``, so the URL uvicorn logs for each
request carries it. ``create_app`` installs ``MaskTokens`` on the ``uvicorn.access`` logger:
the value of every ``token`` query parameter (its name percent-decoded, any case) is
logged as ``***``::

    127.0.0.1:53412 - "GET /runs/r1/events?token=*** HTTP/1.1" 200
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["ACCESS_LOGGER", "MASK", "MaskTokens", "install_token_masking", "mask_tokens"]

ACCESS_LOGGER = "uvicorn.access"
MASK = "***"
_PARAM = re.compile(r"([?&])([^=&#\s\"]*)=([^&#\s\"]*)")


def _masked(match: re.Match[str]) -> str:
    sep, name, _value = match.groups()
    if unquote_plus(name).strip().lower() == "token":
        return f"{sep}{name}={MASK}"
    return match.group(0)


def mask_tokens(text: str) -> str:
    """``text`` with the value of each ``token=`` query parameter replaced by ``***``."""
    return _PARAM.sub(_masked, text) if "=" in text else text


class MaskTokens(logging.Filter):
    """Masks tokens in a record's message and string arguments (keeping the arguments'
    shape: uvicorn's access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(arg) for arg in record.args)
        return True


def _mask_arg(arg: Any) -> Any:
    return mask_tokens(arg) if isinstance(arg, str) else arg


def install_token_masking(logger_name: str = ACCESS_LOGGER) -> None:
    """Add ``MaskTokens`` to the logger (once; a logger's filters survive uvicorn's
    logging configuration)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, MaskTokens) for f in logger.filters):
        logger.addFilter(MaskTokens())
