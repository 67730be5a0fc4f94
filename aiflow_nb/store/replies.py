"""Types of the redis-py replies this package reads.

Every client here keeps ``decode_responses`` off, so replies are bytes; redis-py's
stubs also allow ``str`` (and ``None`` in places). ``cast`` a reply to these.
"""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["RawHash", "StreamEntries", "StreamsReply"]

RawHash: TypeAlias = dict[bytes, bytes]
"""HGETALL."""
StreamEntries: TypeAlias = list[tuple[bytes, dict[bytes, bytes]]]
"""XRANGE / XREVRANGE: (entry id, fields) pairs."""
StreamsReply: TypeAlias = list[tuple[bytes, StreamEntries]]
"""XREAD / XREADGROUP: (stream, entries) pairs (None when the block timed out)."""
