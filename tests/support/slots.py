"""The slot checker: a redis-server of one test on loopback TCP (so MONITOR names each
client by its port), every command it receives recorded through a MONITOR connection,
and each command, transaction (WATCH..MULTI..EXEC of one client) and script (EVAL with
the commands it ran, MONITOR's ``lua`` lines) checked to touch one Redis Cluster slot:
the keys of each command as the server itself names them (``COMMAND GETKEYS``), their
slots by redis-py's ``key_slot`` (CRC16 of the hash tag, as a cluster computes it)."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from aiflow_nb.store.embedded import redis_server_binary

_LINE = re.compile(rb"^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$", re.S)
_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}
_NO_KEYS = {b"MULTI", b"EXEC", b"DISCARD", b"UNWATCH", b"HELLO", b"PING", b"CLIENT", b"INFO"}


def _unescape(raw: bytes) -> bytes:
    """An argument as MONITOR quotes it (``sdscatrepr``) back to its bytes."""
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i : i + 1]
        if c == b"\\" and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            if nxt == b"x":
                out += bytes([int(raw[i + 2 : i + 4], 16)])
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


def parse(line: bytes) -> tuple[str, list[bytes]] | None:
    """(client, args) of one MONITOR line; None for anything else."""
    match = _LINE.match(line)
    if match is None:
        return None
    return match.group(1).decode(), [_unescape(a) for a in _ARG.findall(match.group(2))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpRedis:
    """The embedded redis-server binary on a loopback port of its own."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                threading.Event().wait(0.05)
        client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Recorder:
    """Every command the server receives from ``start()`` to ``stop()`` (MONITOR)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[bytes] = []
        self._conn = redis.Connection(host="127.0.0.1", port=port)
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> Recorder:
        self._conn.send_command("MONITOR")
        assert self._conn.read_response() == b"OK"
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            while True:
                self.lines.append(self._conn.read_response())
        except (redis.ConnectionError, OSError, ValueError, AttributeError):
            return

    def stop(self) -> list[bytes]:
        marker = redis.Redis(port=self.port)
        marker.echo("slot-checker:end")  # the last line: everything before it was read
        marker.close()
        for _ in range(400):
            if self.lines and b"slot-checker:end" in self.lines[-1]:
                break
            threading.Event().wait(0.025)
        self._conn.disconnect()
        self._thread.join(5)
        return self.lines


@dataclass
class Unit:
    """A command, a transaction or a script as it reached the server."""

    client: str
    commands: list[list[bytes]] = field(default_factory=list)

    def describe(self) -> str:
        shown = [b" ".join(c[:3]).decode(errors="replace")[:120] for c in self.commands]
        return f"{self.client}: " + " | ".join(shown[:12])


def units(lines: list[bytes]) -> Iterator[Unit]:
    """The lines grouped: one client's WATCH..EXEC, a script with its ``lua`` lines,
    every other command alone."""
    open_tx: dict[str, Unit] = {}
    watched: dict[str, list[list[bytes]]] = {}
    in_multi: set[str] = set()
    last: Unit | None = None
    for line in lines:
        parsed = parse(line)
        if parsed is None:
            continue
        client, args = parsed
        if not args:
            continue
        name = args[0].upper()
        if client == "lua":  # run by the script (or transaction) just before
            if last is not None:
                last.commands.append(args)
            continue
        if last is not None:
            yield last
            last = None
        if name == b"WATCH":
            watched.setdefault(client, []).append(args)
        elif name == b"UNWATCH":
            watched.pop(client, None)
        elif name == b"MULTI":
            in_multi.add(client)
            open_tx[client] = Unit(client, watched.pop(client, []))
        elif name in (b"EXEC", b"DISCARD") and client in in_multi:
            in_multi.discard(client)
            last = open_tx.pop(client)
            if name == b"DISCARD":
                last.commands = []
        elif client in in_multi:
            open_tx[client].commands.append(args)
        else:
            if client in watched:
                watched[client].append(args)  # reads between WATCH and MULTI: checked with it
                continue
            last = Unit(client, [args])
    if last is not None:
        yield last


def keys_of(conn: redis.Connection, args: list[bytes]) -> list[bytes]:
    """The keys of one command, as the server names them (``COMMAND GETKEYS``)."""
    if args[0].upper() in _NO_KEYS:
        return []
    conn.send_command("COMMAND", "GETKEYS", *args)
    try:
        reply = conn.read_response()
    except redis.ResponseError:  # no key arguments (PUBLISH, SUBSCRIBE, ...)
        return []
    return list(reply)


def violations(lines: list[bytes], port: int, namespace: str) -> list[str]:
    """Each unit touching keys of ``namespace`` in more than one slot, described."""
    conn = redis.Connection(host="127.0.0.1", port=port)
    found: list[str] = []
    mine = namespace.encode()
    try:
        for unit in units(lines):
            slots: dict[int, bytes] = {}
            for args in unit.commands:
                for key in keys_of(conn, args):
                    if mine in key:
                        slots.setdefault(key_slot(key), key)
            if len(slots) > 1:
                spread = ", ".join(k.decode(errors="replace") for k in slots.values())
                found.append(f"{unit.describe()}  ->  {len(slots)} slots: {spread}")
    finally:
        conn.disconnect()
    return found


def checked(lines: list[bytes]) -> int:
    """How many commands were recorded (a check over nothing proves nothing)."""
    return sum(1 for line in lines if parse(line) is not None)
