"""The asyncio clients pack their commands with hiredis, as redis-py's sync clients do.

redis-py's sync ``Connection`` packs a command with ``hiredis.pack_command`` (C) when
hiredis is installed; its asyncio ``Connection`` always packs in Python, an encoder call
and a few joins per argument: ~47 µs for a 41-argument script call here against hiredis'
~8 µs, and a worker's three commands per trivial run (its queue read, the take-and-read
script, the batch script: ~100 arguments) spent about a tenth of its CPU there.
``packed(cls)`` is ``cls`` with hiredis packing; ``new_async_client`` makes every
connection of its pool (or of its cluster's nodes) one.

The same connections say ``ConnectionError`` (which the outage handling re-sends on)
when another task closed them while a command was on its way out: redis-py's cluster
client, re-initialising after a MOVED, disconnects every connection of its nodes, those
in use too, and redis-py then fails the send with ``AttributeError`` (its writer gone).

The bytes are the same as redis-py's: a command whose arguments are all ``str`` (or a
``str`` subclass such as a string enum), ``bytes``, ``int`` or ``float`` is packed by
hiredis (it formats numbers as ``repr`` does, and encodes text as UTF-8); anything else
(an ``IntEnum``, a ``bool``, a ``memoryview``, a non-UTF-8 client encoding) goes to
redis-py's own packer, which also raises its ``DataError`` for what cannot be sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["HiredisPacking", "packed"]

_C = TypeVar("_C", bound=type[AbstractConnection])
_PLAIN = frozenset({str, bytes, int, float})
_made: dict[type, type] = {}


class HiredisPacking:
    """Mixin for a redis-py asyncio connection class: ``pack_command`` by hiredis, and a
    send on a connection closed meanwhile by another task is a ``ConnectionError``."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except AttributeError as exc:
            # redis-py disconnects before re-raising, so the writer is None by now whatever
            # the cause: only its writer's methods on None mean it was closed meanwhile
            if exc.obj is not None or exc.name not in ("writelines", "drain"):
                raise  # not a closed connection: a bug, shown as it is
            raise RedisConnectionError(
                "connection closed by another task while a command was being sent"
            ) from None

    def pack_command(self, *args: Any) -> list[bytes]:
        head = args[0]
        if isinstance(head, str):  # 'CONFIG GET' is sent as two arguments (as redis-py)
            args = (*head.encode().split(), *args[1:])
        elif isinstance(head, bytes) and b" " in head:
            args = (*head.split(), *args[1:])
        if self._hiredis_can(args):
            return [hiredis.pack_command(args)]
        return super().pack_command(*args)  # type: ignore[misc, no-any-return]

    def _hiredis_can(self, args: tuple[Any, ...]) -> bool:
        encoder = self.encoder  # type: ignore[attr-defined]
        if encoder.encoding not in ("utf-8", "utf8") or encoder.encoding_errors != "strict":
            return False
        for arg in args:
            if type(arg) not in _PLAIN and not isinstance(arg, str):
                return False
        return True


def packed(cls: _C) -> _C:
    """``cls`` (a redis-py asyncio connection class) packing with hiredis; the same class
    for the same ``cls``."""
    if issubclass(cls, HiredisPacking):
        return cls
    made = _made.get(cls)
    if made is None:
        made = _made[cls] = type(f"Hiredis{cls.__name__}", (HiredisPacking, cls), {})
    return made  # type: ignore[return-value]
