"""Fencing tokens: which execution attempt of a run may still write it.

Each attempt of a run holds a token of its own, ``<worker id>/<nonce>`` (``new_token``):
the value of the run's lease (``{ns}:run:{<id>}:lease``, a string with a TTL, renewed by
the worker's heartbeat). The run record's ``fence`` field names the attempt that last took
the lease and the last batch of writes it applied: ``"<token> <seq>"`` (``0``: none yet).

A write of an attempt — an event batch with its journal entries, record fields and cache
writes, the terminal write, a lease renewal — is one Lua script that applies it only while
the attempt is current (``CURRENT_LUA``), checked and applied in the same script:

- the run has not ended (its status is not terminal: an ended run is never written
  again by an attempt, so a terminal status is never overwritten) and is not parked
  (``waiting``: the attempt that parked it is over; the next attempt takes a new lease), and
- the lease holds the token, or it expired with nobody taking it since and the record's
  ``fence`` still names the attempt (no recovery or other attempt came between: the
  monitor's re-queue and a hand-back clear it). The script then takes the lease again with
  the same token: an expired lease is not a lost one.

Otherwise the script writes nothing and answers "lost" (another attempt took the run over,
or it was recovered) or "ended"; the attempt then stops at once (``Fence.lose``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import defaults, keys

__all__ = ["CURRENT_LUA", "DUPLICATE", "ENDED", "LOST", "OK", "Fence", "holder_of", "new_token"]

OK, LOST, DUPLICATE, ENDED = 1, 0, 2, 3
"""Replies of the fenced scripts: applied, refused (another attempt or a recovery took
the run), already applied (a re-sent batch), refused (the run has ended)."""

CURRENT_LUA = """
local function is_ended(status)
  return status == 'completed' or status == 'failed' or status == 'cancelled'
end
-- the last batch seq a record's `fence` field `f` says attempt `token` applied, or nil
local function seq_of(f, token)
  local mark = token .. ' '
  if f and string.sub(f, 1, #mark) == mark then return tonumber(string.sub(f, #mark + 1)) end
  return nil
end
-- the last batch seq the record says attempt `token` applied, or nil: another attempt's
local function applied(record, token)
  return seq_of(redis.call('HGET', record, 'fence'), token)
end
-- `current` given the record's status (read by the caller)
local function decide(lease, token, ttl, seq, status)
  if is_ended(status) then return 3 end
  if status == 'waiting' then return 0 end  -- parked: no attempt is current
  local holder = redis.call('GET', lease)
  if holder == token then return 1 end
  if holder or not seq then return 0 end
  redis.call('SET', lease, token, 'PX', ttl)
  return 1
end
-- 1: attempt `token` is current (its lease, re-taken for `ttl` ms if it had expired with
-- nobody taking it since); 0: another attempt took the run or it was recovered; 3: ended
local function current(lease, record, token, ttl, seq)
  return decide(lease, token, ttl, seq, redis.call('HGET', record, 'status'))
end
"""
"""Lua functions the run-fenced scripts (``events/writer.py``, ``ops/leases.py``) share."""


def new_token(worker_id: str) -> str:
    """A fencing token for a new execution attempt by ``worker_id``."""
    return f"{worker_id}/{secrets.token_hex(4)}"


def holder_of(token: str | bytes) -> str:
    """The worker id in a lease's value (a token, or a bare worker id)."""
    text = token.decode() if isinstance(token, bytes) else token
    return text.rsplit("/", 1)[0] if "/" in text else text


@dataclass(eq=False)
class Fence:
    """One execution attempt's claim on its run, shared by its worker (which takes and
    renews the lease) and its writer (whose every batch is fenced by ``token``)."""

    run_id: str
    token: str
    ttl_ms: int
    valid_until: float = 0.0
    """``time.monotonic()`` until which the lease is certainly still ours (a fraction of
    the TTL after the last renewal, ``defaults.FENCE_TRUST``). A write later than that
    first re-checks the token with Redis, so a stalled attempt never starts another step."""
    lost: bool = False
    """The token is no longer current: nothing more of this attempt is written."""
    final: bool = False
    """The run's terminal write is queued: the heartbeat neither renews nor cancels it."""
    on_lost: Callable[[], None] | None = None
    """Called once, from any thread, when the attempt is found to have lost its token."""
    lease: str = field(init=False)
    record: str = field(init=False)

    def __post_init__(self) -> None:
        self.lease = keys.run_lease(self.run_id)
        self.record = keys.run(self.run_id)

    def renewed(self, sent_at: float) -> None:
        """The lease was taken or renewed by a command sent at ``sent_at`` (monotonic)."""
        until = sent_at + self.ttl_ms / 1000 * defaults.FENCE_TRUST
        if until > self.valid_until:
            self.valid_until = until

    @property
    def trusted(self) -> bool:
        """Still within ``valid_until`` (no round trip needed before the next step)."""
        return time.monotonic() < self.valid_until

    def lose(self) -> None:
        """Mark the token lost (idempotent); tell ``on_lost`` the first time."""
        if self.lost:
            return
        self.lost = True
        if self.on_lost is not None:
            self.on_lost()
