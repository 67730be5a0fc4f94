"""Group-committed, fenced writes of a run's events, journal, record and cache entries.

Every write is appended to a buffer; one flusher task sends the whole buffer as one batch,
then sends whatever arrived meanwhile. A lone event therefore costs one round trip (it
reaches readers within milliseconds) and a burst is batched. ``emit`` is safe to call from
any thread.

A batch is one Lua script (``BATCH``; every key it touches is in KEYS): it applies all of
the batch's commands, in order, only while the writer's fencing token is current
(``events/fence.py``), atomically, so a reader never sees a run's status ahead of the
events written with it and a writer whose attempt was taken over writes nothing more.
The script touches one Redis Cluster slot, the run's (its partition's, ``keys.py``): a
command on a key of another slot (a cache entry) is sent right after the batch it came
with, outside it, and only if the batch was applied. Each batch carries the attempt's
next sequence number, recorded by the script in the
run record's ``fence`` field: a batch re-sent after a lost reply is recognised there and
not applied twice.

On a connection error the writer keeps the batch and everything after it, in order, and
re-sends them with jittered backoff (``defaults.WRITER_RETRY_*``) until Redis answers; the
script re-checks the token then. At most ``defaults.WRITER_MAX_UNSENT`` writes are kept
while Redis is unreachable: past that the writer calls ``on_overflow`` (the executor ends
the run ``failed``); nothing is ever dropped silently.

Secrets are masked here, before anything is written: each event's data goes through the
writer's ``redaction.Redactor`` (credential-named keys, the run's secret names, the literal
values of its secrets, which ``add_secrets`` extends as calls bind credential-named
arguments), so no reader of the stream can show them. Journal entries and cache writes
are kept as the code returned them (a replay must return what the step returned).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aredis
from redis.crc import key_slot

from .. import defaults, keys
from ..errors import AiflowError
from ..redaction import Redactor, may_name_credentials
from ..store.failures import CONNECTION_ERRORS
from ..store.scripts import run_script
from .fence import CURRENT_LUA, ENDED, LOST, Fence
from .model import FIELD, encode_event

__all__ = ["BATCH", "RETRYABLE", "EventWriter", "Op", "WriteBacklogFull"]

log = logging.getLogger("aiflow_nb.writer")

Op = tuple[str, tuple[Any, ...], dict[str, Any]]

RETRYABLE = CONNECTION_ERRORS
"""Errors after which a batch is kept and re-sent (it may or may not have been applied:
the sequence number makes the re-send harmless)."""

_RECORD, _RELEASE, _EXPIRE = "record", "release", "expire"
_BATCH_OPS = frozenset(("xadd", "journal", _RECORD, _RELEASE, _EXPIRE))
"""Ops that are always on the run's own keys (the rest name their key first)."""
_DELTA, _SPAN_ENDS = (
    "output.delta",
    ("span.completed", "span.failed", "span.replayed", "span.cached"),
)
_FIXED = 5
"""KEYS[1..5] of a batch: lease, record, events, journal, running set; others follow."""


class WriteBacklogFull(AiflowError):
    """A run's writer could not reach Redis for longer than its backlog allows."""

    def __init__(self, run_id: str, unsent: int, seconds: float) -> None:
        super().__init__(
            f"run {run_id}: Redis unreachable for {seconds:.1f} s; {unsent} writes kept "
            f"unsent (more than WRITER_MAX_UNSENT = {defaults.WRITER_MAX_UNSENT}), so the "
            "run was stopped. Its journaled steps are kept: resume() continues it"
        )


class _Outage:
    """One log line per outage in this process, however many writers notice it."""

    since: float | None = None

    @classmethod
    def begin(cls, exc: BaseException) -> None:
        if cls.since is None:
            cls.since = time.monotonic()
            log.warning("Redis unreachable (%s): run writes are kept and re-sent", exc)

    @classmethod
    def end(cls) -> None:
        if cls.since is not None:
            log.warning("Redis reachable again: run writes re-sent after %.1f s", cls.elapsed())
            cls.since = None

    @classmethod
    def elapsed(cls) -> float:
        return 0.0 if cls.since is None else time.monotonic() - cls.since


class EventWriter:
    """Writes one run's events (and journal, record fields and cache entries) on one
    event loop, fenced by ``fence`` (unfenced without one)."""

    def __init__(
        self,
        run_id: str,
        client: aredis.Redis,
        loop: asyncio.AbstractEventLoop,
        fence: Fence | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.run_id = run_id
        self.fence = fence
        self.redactor = redactor if redactor is not None else Redactor.from_environment()
        """What every event's data is masked with (``add_secrets`` extends it)."""
        self._client = client
        self._loop = loop
        self._keys = [
            keys.run_lease(run_id),
            keys.run(run_id),
            keys.run_events(run_id),
            keys.run_journal(run_id),
            keys.running(keys.partition_of(run_id)),
        ]
        self._slot = key_slot(self._keys[1].encode())
        """The run's slot: a command on a key of another (a cache entry) is sent after
        the batch, not in it (one script touches one slot)."""
        self._pending: list[Op] = []
        self._inflight: tuple[int, list[Op]] | None = None
        """The batch being sent (kept, with its sequence number, until Redis answers)."""
        self._seq = 0
        self._flusher: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._loop_ident = threading.get_ident() if _in_loop(loop) else None
        """The loop's thread (made there, as every worker's writer is): an op pushed from it
        is appended at once, from any other thread it goes through ``_take_foreign``."""
        self._held: dict[str, tuple[str | None, str | None, int | None, str, float | None]] = {}
        """Span id -> its streamed text held back (``_stream_text``), with the delta's other
        fields: parent id, name, attempt, the text, ts."""
        self._foreign: collections.deque[Op] = collections.deque()
        """Ops pushed from other threads (a deque: its appends and pops are atomic, no lock)."""
        self._wakeup_pending = False
        """The loop will look at ``_foreign`` again without being woken: a wake-up is
        scheduled, or the flusher is running (it drains ``_foreign`` before each batch and
        lowers this only when it stops). Another thread's op wakes the loop only when it is
        down, so a run on a worker thread wakes the loop about once per burst of writing,
        not once per batch: each wake-up is a write to the loop's self-pipe, and the
        syscall hands the GIL to the loop at once."""
        self._unreachable_since: float | None = None
        self.overflowed = False
        self.backlog: WriteBacklogFull | None = None
        """Why the writer overflowed (the error the executor ends the run with)."""
        self.on_overflow: Callable[[], None] | None = None
        """Called once (on the loop) when more than ``WRITER_MAX_UNSENT`` writes wait."""

    @property
    def unreachable(self) -> bool:
        """A send failed and none has succeeded since: Redis is unreachable for this writer
        (its writes are kept, up to ``WRITER_MAX_UNSENT``)."""
        return self._unreachable_since is not None

    @property
    def backlogged(self) -> bool:
        """More than ``defaults.WRITER_YIELD_OPS`` writes wait on the loop: code running on
        it should yield once (``await asyncio.sleep(0)``) so the flusher sends them."""
        return len(self._pending) >= defaults.WRITER_YIELD_OPS

    @property
    def lost(self) -> bool:
        """The writer's fencing token is gone: it writes nothing more."""
        return self.fence is not None and self.fence.lost

    def emit(self, type: str, keys_checked: bool = False, **fields: Any) -> None:
        """Append an event (see ``make_payload`` for the fields), its secrets masked.
        ``keys_checked``: the caller checked the keys of its data for credential names
        already (``redaction.may_name_credentials``): only the run's known secrets are
        looked for here."""
        self.span_event(
            type,
            fields.get("span_id"),
            fields.get("parent_id"),
            fields.get("name"),
            fields.get("attempt"),
            fields.get("data"),
            fields.get("ts"),
            keys_checked,
        )

    def span_event(
        self,
        type: str,
        span_id: str | None,
        parent_id: str | None,
        name: str | None,
        attempt: int | None,
        data: dict[str, Any] | None,
        ts: float | None,
        keys_checked: bool = False,
    ) -> None:
        """``emit`` with every field given in order (the hot path: two per step)."""
        self._check()
        if type == _DELTA and span_id is not None and self.redactor.literals:
            text = self._stream_text(span_id, parent_id, name, attempt, data, ts)
            if not text:
                return  # all held back: it may be the start of a secret
            data = {**(data or {}), "text": text}
        elif type in _SPAN_ENDS and span_id in self._held:
            held_parent, held_name, held_attempt, held_text, held_ts = self._held.pop(span_id)
            self._emit(
                _DELTA, span_id, held_parent, held_name, held_attempt, {"text": held_text}, held_ts
            )
        self._emit(type, span_id, parent_id, name, attempt, data, ts, keys_checked)

    def _check(self) -> None:
        """Called before each event and journal entry is appended (``RunWriter``'s raises
        once its attempt is stopped)."""

    def _stream_text(
        self,
        span_id: str,
        parent_id: str | None,
        name: str | None,
        attempt: int | None,
        data: dict[str, Any] | None,
        ts: float | None,
    ) -> str:
        """The text of a span's ``output.delta`` that may be written now (masked); its end
        that a secret may begin with is held back until the next delta or the span's end."""
        held = self._held.pop(span_id, None)
        text = str((data or {}).get("text", ""))
        ready, rest = self.redactor.split_stream((held[3] if held else "") + text)
        if rest:
            self._held[span_id] = (parent_id, name, attempt, rest, ts)
        return ready

    def _emit(
        self,
        type: str,
        span_id: str | None,
        parent_id: str | None,
        name: str | None,
        attempt: int | None,
        data: dict[str, Any] | None,
        ts: float | None,
        keys_checked: bool = False,
    ) -> None:
        payload = encode_event(type, span_id, parent_id, name, attempt, data, ts)
        redactor = self.redactor
        maybe = (redactor.known and redactor.may_hold_known(payload)) or (
            not keys_checked and may_name_credentials(payload)
        )
        if maybe:  # rare: most events are written as first encoded
            data = redactor.apply(data)
            if isinstance(name, str):
                name = redactor.apply(name)
            payload = encode_event(type, span_id, parent_id, name, attempt, data, ts)
        self._push(("xadd", (payload,), {}))

    def mask(self, value: Any) -> Any:
        """``value`` with the run's secrets masked (for record fields written as JSON)."""
        return self.redactor.apply(value)

    def add_secrets(self, literals: list[str]) -> None:
        """Mask ``literals`` too, in every event written from now on (safe from any thread)."""
        new = [s for s in literals if not self.redactor.knows(s)]
        if new:
            with self._lock:
                self.redactor = self.redactor.with_literals(new)

    def journal(self, step_key: str, document: bytes) -> None:
        """Record a finished step's result."""
        self._check()
        self._push(("journal", (step_key, document), {}))

    def record(self, **fields: str | bytes | int | float) -> None:
        """Update fields of the run record."""
        self._push((_RECORD, (fields,), {}))

    def release(self) -> None:
        """Delete the run's lease (part of the terminal write; fenced like the rest)."""
        self._push((_RELEASE, (), {}))

    def expire(self, names: list[str], ms: int) -> None:
        """Set a TTL of ``ms`` milliseconds on each key of ``names`` (one op of the batch)."""
        self._push((_EXPIRE, (tuple(names), ms), {}))

    def raw(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Any other one-key command, in order with the events (a key of another slot,
        e.g. a cache ``raw("set", key, value, px=ms)``, right after its batch):
        ``args[0]`` is its key; keyword options
        become Redis options (``px=5`` -> ``PX 5``, ``nx=True`` -> ``NX``,
        ``mapping={...}`` -> field value pairs)."""
        if method.lower() in ("eval", "evalsha", "multi", "exec"):
            raise ValueError(f"{method} cannot be part of a fenced batch")
        self._push((method, args, kwargs))

    def _push(self, op: Op) -> None:
        if self.fence is not None and self.fence.lost:
            return  # the attempt was taken over: nothing of it is written any more
        if self._loop_ident == threading.get_ident() or (
            self._loop_ident is None and _in_loop(self._loop)
        ):
            self._append(op)
            return
        self._foreign.append(op)  # from another thread: the flusher takes it, or a wake-up
        if not self._wakeup_pending:  # the loop lowers it before it last looks at the deque,
            self._wakeup_pending = True  # so an op is never left behind (at worst, one
            self._loop.call_soon_threadsafe(self._take_foreign)  # wake-up too many)

    def _take_foreign(self) -> None:
        """On the loop: take the ops other threads pushed, and have the flusher send them."""
        self._drain_foreign()
        if self._pending or self._flusher is not None:
            self._ensure_flusher()  # it lowers ``_wakeup_pending`` when it stops
        else:
            self._stop_taking()

    def _drain_foreign(self) -> None:
        foreign = self._foreign
        if foreign:
            self._pending.extend(foreign.popleft() for _ in range(len(foreign)))

    def _stop_taking(self) -> bool:
        """Lower ``_wakeup_pending`` (from now another thread's op wakes the loop), then
        take what came before it was down; True if that left nothing to send."""
        self._wakeup_pending = False
        if not self._foreign:
            return True
        self._wakeup_pending = True
        self._drain_foreign()
        return False

    def _append(self, op: Op) -> None:
        if self._foreign:  # first what other threads pushed before (a step on a thread
            self._drain_foreign()  # ended, then the run on the loop went on): kept in order
        self._pending.append(op)
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._unreachable_since is not None:
            self._check_backlog()
        if self._flusher is None:
            self._idle.clear()
            self._flusher = self._loop.create_task(self._flush_loop())

    def _check_backlog(self) -> None:
        unsent = len(self._pending) + (len(self._inflight[1]) if self._inflight else 0)
        if unsent > defaults.WRITER_MAX_UNSENT and not self.overflowed:
            self.overflowed = True
            assert self._unreachable_since is not None
            seconds = time.monotonic() - self._unreachable_since
            self.backlog = WriteBacklogFull(self.run_id, unsent, seconds)
            log.error("%s", self.backlog)
            if self.on_overflow is not None:
                self.on_overflow()

    async def _flush_loop(self) -> None:
        failures = 0
        try:
            while True:
                if self.lost:
                    self._pending.clear()
                    self._inflight = None
                    break
                if self._inflight is None:
                    self._drain_foreign()
                    if not self._pending and self._stop_taking():
                        break
                    self._seq += 1  # whole: a batch is atomic
                    cut = self._cut(self._pending)
                    self._inflight = (self._seq, self._pending[:cut])
                    self._pending = self._pending[cut:]
                try:
                    outcome = await self._send(*self._inflight)
                except RETRYABLE as exc:
                    failures += 1
                    await self._wait_out(exc, failures)
                    continue
                failures = 0
                self._inflight = None
                if self._unreachable_since is not None:
                    self._unreachable_since = None
                    _Outage.end()
                if outcome in (LOST, ENDED) and self.fence is not None:
                    self.fence.lose()
        except BaseException as exc:  # surfaced by flush(); never lost silently
            self.error = exc
            self._pending.clear()
            self._inflight = None
        finally:
            self._flusher = None
            self._idle.set()
            if self._wakeup_pending and not self._stop_taking():  # stopped by an error
                self._loop.call_soon(self._take_foreign)

    def _cut(self, pending: list[Op]) -> int:
        """How many of ``pending`` go in the next batch: all of them, or up to and including
        the first command on a key of another slot. That command is sent right after its
        batch, so it must be written before anything that came after it is: a cache entry
        before the run's result, which a caller may act on at once (a second run reading
        the cache)."""
        for i, (method, op_args, _) in enumerate(pending[:-1]):
            if method in _BATCH_OPS:
                continue
            if key_slot(str(op_args[0]).encode()) != self._slot:
                return i + 1
        return len(pending)

    async def _wait_out(self, exc: BaseException, failures: int) -> None:
        """Back off before re-sending the batch kept after ``exc`` (jittered, doubling)."""
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
        _Outage.begin(exc)
        self._check_backlog()
        cap = min(defaults.WRITER_RETRY_MAX, defaults.WRITER_RETRY_INITIAL * 2 ** min(failures, 16))
        await asyncio.sleep(random.uniform(cap / 2, cap))

    async def _send(self, seq: int, batch: list[Op]) -> int:
        """Send one batch as one script call; the script's reply (``fence.OK``, ...)."""
        fence = self.fence
        key_list = list(self._keys)
        args: list[Any] = [fence.token, seq, fence.ttl_ms] if fence is not None else ["", seq, 0]
        journal = [a for method, a, _ in batch if method == "journal"]
        if journal:  # first: a step is journaled no later than its completion event
            args += ("j", len(journal))
            for step_key, document in journal:
                args += (step_key, document)
        record: dict[str, Any] = {}  # one HSET, last (the batch is atomic: order is unseen)
        events: list[bytes] = []
        outside: list[tuple[str, tuple[Any, ...]]] = []
        for method, op_args, kwargs in _without_undone(batch):
            if method == "xadd":
                events.append(op_args[0])
                continue
            if method == "journal":
                continue
            if method == _RECORD:
                record.update(op_args[0])
                continue
            if events:
                args += _events_op(events)
                events.clear()
            if method == _RELEASE:
                args.append("r")
            elif method == _EXPIRE:
                names, ms = op_args
                args += ("P", ms, ",".join(str(_index(key_list, k)) for k in names))
            else:
                key, *rest = op_args
                rest += _options(kwargs)
                if key_slot(str(key).encode()) != self._slot:
                    outside.append((method, (key, *rest)))
                    continue
                args += ("c", method, _index(key_list, key), len(rest), *rest)
        if events:
            args += _events_op(events)
        if record:
            args += ("h", len(record))
            for name, value in record.items():
                args += (name, value)
        outcome = int(await self._script(key_list, args))
        if outside and outcome not in (LOST, ENDED):  # after the batch they go with
            pipe = self._client.pipeline(transaction=False)
            for method, command in outside:
                pipe.execute_command(method.upper(), *command)
            await pipe.execute()
        return outcome

    async def _script(self, key_list: list[str], args: list[Any]) -> Any:
        # EVALSHA; a restarted Redis that forgot it gets it by EVAL
        return await run_script(self._client, BATCH, len(key_list), *key_list, *args)

    async def flush(self) -> None:
        """Wait until everything appended so far is written; re-raise a write error."""
        self._take_foreign()
        await self._idle.wait()
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _index(key_list: list[str], key: str) -> int:
    """``key``'s index in the batch's KEYS (1-based), added at the end if not there yet."""
    try:
        return key_list.index(key) + 1
    except ValueError:
        key_list.append(key)
        return len(key_list)


def _events_op(events: list[bytes]) -> tuple[Any, ...]:
    """The batch op appending ``events``: one payload as is (``e``), more end to end in one
    argument with their lengths (``E``: one argument for Redis to parse, not one each)."""
    if len(events) == 1:
        return ("e", 1, events[0])
    return ("E", ",".join([str(len(e)) for e in events]), b"".join(events))


def _without_undone(batch: list[Op]) -> list[Op]:
    """The batch less each ``SADD key member`` that a later ``SREM`` of the same member
    undoes (a run that starts and ends in one batch never shows in the running set)."""
    sadds = [i for i, op in enumerate(batch) if op[0] == "sadd"]
    if not sadds:
        return batch
    undone = {
        i
        for i in sadds
        if any(later[0] == "srem" and later[1] == batch[i][1] for later in batch[i + 1 :])
    }
    return [op for i, op in enumerate(batch) if i not in undone] if undone else batch


def _options(kwargs: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for name, value in kwargs.items():
        if name == "mapping":
            for field_name, field_value in value.items():
                out += (field_name, field_value)
        elif value is True:
            out.append(name.upper())
        elif value is not None and value is not False:
            out += (name.upper(), value)
    return out


BATCH = (
    """-- aiflow: one fenced batch of a run's writes (events/writer.py)
-- KEYS: lease, record, events, journal, running set, then the other keys of 'c' ops.
-- ARGV: token ('' = unfenced), batch seq, lease ttl ms, then the ops, in order:
--   'j' n (field value)*n   journal HSET        'e' n payload*n   XADD events * e <payload>
--   'E' sizes blob          the payloads of blob (sizes: their lengths, comma-separated)
--   'P' ms indexes          PEXPIRE each of KEYS[index] (indexes comma-separated)
--   'h' n (field value)*n   record HSET         'r'               release (DEL) the lease
--   'c' command key-index n arg*n               any other command on KEYS[key-index]
-- A batch's record fields come as one 'h', its last op: the fence is written with them.
"""
    + CURRENT_LUA
    + """
local FIELD = '@FIELD@'  -- model.FIELD
local token, seq = ARGV[1], tonumber(ARGV[2])
if token ~= '' then
  local s = redis.call('HMGET', KEYS[2], 'status', 'fence')
  local done = seq_of(s[2], token)
  if done and done >= seq then return 2 end
  local state = decide(KEYS[1], token, ARGV[3], done, s[1])
  if state ~= 1 then return state end
end
local fenced = token == ''
local function hset(key, first, last)
  while first <= last do
    local upto = math.min(last, first + 999)
    redis.call('HSET', key, unpack(ARGV, first, upto))
    first = upto + 1
  end
end
local i, n = 4, #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 'e' then
    local count = tonumber(ARGV[i + 1])
    for j = i + 2, i + 1 + count do redis.call('XADD', KEYS[3], '*', FIELD, ARGV[j]) end
    i = i + 2 + count
  elseif op == 'E' then
    local blob, at = ARGV[i + 2], 1
    for size in string.gmatch(ARGV[i + 1], '%d+') do
      local upto = at + tonumber(size)
      redis.call('XADD', KEYS[3], '*', FIELD, string.sub(blob, at, upto - 1))
      at = upto
    end
    i = i + 3
  elseif op == 'j' or op == 'h' then
    local last = i + 1 + 2 * tonumber(ARGV[i + 1])
    if op == 'h' and last == n and not fenced then  -- the last op: the fence goes with it
      local args = {unpack(ARGV, i + 2, last)}
      args[#args + 1] = 'fence'
      args[#args + 1] = token .. ' ' .. seq
      redis.call('HSET', KEYS[2], unpack(args))
      fenced = true
    else
      hset(op == 'j' and KEYS[4] or KEYS[2], i + 2, last)
    end
    i = last + 1
  elseif op == 'c' then
    local count = tonumber(ARGV[i + 3])
    redis.call(ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])], unpack(ARGV, i + 4, i + 3 + count))
    i = i + 4 + count
  elseif op == 'P' then
    for index in string.gmatch(ARGV[i + 2], '%d+') do
      redis.call('PEXPIRE', KEYS[tonumber(index)], ARGV[i + 1])
    end
    i = i + 3
  elseif op == 'r' then
    redis.call('DEL', KEYS[1])
    i = i + 1
  else
    return redis.error_reply('aiflow batch: unknown op ' .. tostring(op))
  end
end
if not fenced then redis.call('HSET', KEYS[2], 'fence', token .. ' ' .. seq) end
return 1
""".replace("@FIELD@", FIELD.decode())
)
"""The batch script (``EVALSHA``; loaded again by ``EVAL`` after a Redis restart)."""


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
