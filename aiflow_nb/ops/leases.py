"""Leases: string keys whose value is the id of their one holder, with a TTL (a run's
``keys.run_lease``, held by one execution attempt; ``keys.monitor_lock``, held by the
acting monitor). The Lua scripts here change one only while its holder still holds it, so a
holder that stalled past the TTL never renews or frees a lease taken over by another.

A run's lease holds the attempt's fencing token (``events/fence.py``: ``<worker id>/<nonce>``,
unique per attempt), and its scripts also keep the run record's ``fence`` field:
``TAKE_RUN`` takes it, ``RENEW_RUN`` renews it (or takes it again when it merely expired and
nobody recovered or took the run since). Every other write of the attempt is fenced by the
same token (``events/writer.py``; ``recovery.fail_run``).

Each generic script is ``EVAL <script> 1 <key> <holder> [<ttl ms>]``, e.g.
``pipe.eval(leases.RELEASE, 1, keys.run_lease(run_id), token)``; the run scripts are
``EVAL <script> 2 <lease> <record> <token> <ttl ms>``, with the partition's lease
deadlines (``keys.lease_deadlines``) as a third key and ``<run id> <deadline>`` after: a
take or renewal then moves the run's deadline in the index the monitor reads
(``deadline_args``; ``CHECK_LAPSED`` is the monitor's look at a run past it).
"""

from __future__ import annotations

import threading
import time
from typing import cast

import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import keys
from ..events.fence import CURRENT_LUA, OK, Fence, holder_of, new_token
from ..store import redis_url
from ..store.connection import new_sync_client
from ..store.failures import CONNECTION_ERRORS
from ..store.scripts import run_script

__all__ = [
    "ACQUIRE",
    "CHECK_LAPSED",
    "CHECK_TIMEOUT",
    "RELEASE",
    "RENEW",
    "RENEW_RUN",
    "TAKE_AND_READ",
    "TAKE_RUN",
    "Fence",
    "Taken",
    "deadline_args",
    "holder_of",
    "new_token",
    "renew_now",
    "take",
    "take_and_read",
]

ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
"""Take the lease for ARGV[2] ms when free, or renew it when already ours: 1; else 0."""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
"""Extend the lease to ARGV[2] ms while it is still ours: 1; gone or another's: 0."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
"""Delete the lease while it is still ours: 1; gone or another's: 0."""

TAKE_RUN = (
    CURRENT_LUA
    + """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if KEYS[3] then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3]) end
local status = redis.call('HGET', KEYS[2], 'status')
if status and not is_ended(status) then redis.call('HSET', KEYS[2], 'fence', ARGV[1] .. ' 0') end
return 1
"""
)
"""Take a run's free lease for a new attempt (token ARGV[1], ARGV[2] ms) and name the
attempt in the record's ``fence`` (when the run has a record and has not ended): 1; held
by another attempt: 0."""

TAKE_AND_READ = (
    CURRENT_LUA
    + """
-- KEYS: lease, record, journal, seed[, lease deadlines]; ARGV: token, ttl ms[, run id,
-- lease deadline (epoch s)]
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if KEYS[5] then redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3]) end
local rec = redis.call('HGETALL', KEYS[2])
local status, attempt, forked
for i = 1, #rec, 2 do
  local name = rec[i]
  if name == 'status' then status = rec[i + 1]
  elseif name == 'attempt' then attempt = rec[i + 1]
  elseif name == 'forked_from' then forked = rec[i + 1] end
end
if status and not is_ended(status) then redis.call('HSET', KEYS[2], 'fence', ARGV[1] .. ' 0') end
local journal, seed = {}, {}
if attempt and attempt ~= '0' then journal = redis.call('HGETALL', KEYS[3]) end
if forked then seed = redis.call('HGETALL', KEYS[4]) end
return {1, rec, journal, seed}
"""
)
"""``TAKE_RUN`` and the reads the attempt starts from, in one round trip: 0 when another
attempt holds the lease, else ``{1, record, journal, seed}`` (flat field/value arrays). A
run never started (``attempt`` 0) has no journal yet, and only a rerun (``forked_from``)
has a seed: those reads are skipped."""

Taken = tuple[dict[bytes, bytes], dict[bytes, bytes], dict[bytes, bytes]]
"""What an attempt starts from: the run's record, journal and seed (raw hashes)."""

RENEW_RUN = (
    CURRENT_LUA
    + """
local state = current(KEYS[1], KEYS[2], ARGV[1], ARGV[2], applied(KEYS[2], ARGV[1]))
if state == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if KEYS[3] then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3]) end
end
return state
"""
)
"""Renew a run's lease for ARGV[2] ms while attempt ARGV[1] is current, taking it again
when it expired with nobody recovering or taking the run since: 1 (``fence.OK``); taken
over or recovered: 0 (``LOST``); the run has ended: 3 (``ENDED``). With a third key (the
partition's lease deadlines, ``keys.lease_deadlines``) and ARGV[3..4] (run id, deadline),
it moves the run's deadline there too (as ``TAKE_RUN`` and ``TAKE_AND_READ`` do)."""

CHECK_LAPSED = """
-- KEYS: lease deadlines, lease, record; ARGV: run id, now (epoch s)
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + ttl / 1000, ARGV[1])
  return 0
end
if redis.call('HGET', KEYS[3], 'status') ~= 'running' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
return 1
"""
"""A run whose lease deadline passed: held again (renewed where the index did not see it:
its deadline moved) or no longer running (its entry dropped): 0; running with no lease:
1, the monitor recovers it (and then drops its entry)."""


def deadline_args(fence: Fence) -> tuple[str, str, float]:
    """The lease scripts' optional index arguments for ``fence``: the partition's lease
    deadlines key, the run id and the deadline of a lease taken or renewed now."""
    index = keys.lease_deadlines(keys.partition_of(fence.run_id))
    return index, fence.run_id, time.time() + fence.ttl_ms / 1000


CHECK_TIMEOUT = 0.5
"""Seconds ``renew_now`` waits for Redis at most (it may run on the worker's loop)."""

_check_lock = threading.Lock()
_check_clients: dict[str, redis.Redis] = {}


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def take_and_read(client: aredis.Redis, fence: Fence) -> Taken | None:
    """Take the run's lease for the attempt ``fence`` and read its record, journal and
    seed (one script call); None when another attempt holds the lease."""
    sent = time.monotonic()
    # no lease deadline yet: the first renewal records it (a run shorter than a heartbeat
    # never costs one); a worker dying before that leaves its queue entry to the monitor
    reply = await run_script(
        client,
        TAKE_AND_READ,
        4,
        fence.lease,
        fence.record,
        keys.run_journal(fence.run_id),
        keys.run_seed(fence.run_id),
        fence.token,
        fence.ttl_ms,
    )
    if not reply:
        return None
    fence.renewed(sent)
    _, rec, journal, seed = reply
    return _pairs(rec), _pairs(journal), _pairs(seed)


async def take(client: aredis.Redis, fence: Fence) -> bool:
    """Take the run's lease for the attempt ``fence``; False when another attempt holds it."""
    sent = time.monotonic()
    index, run_id, deadline = deadline_args(fence)
    got = await client.eval(
        TAKE_RUN, 3, fence.lease, fence.record, index, fence.token, fence.ttl_ms, run_id, deadline
    )
    if got:
        fence.renewed(sent)
    return bool(got)


def _check_client() -> redis.Redis:
    """A client of its own for ``renew_now``: short timeouts, no retries (it may block the
    worker's loop, so it must give up fast while Redis is unreachable)."""
    url = redis_url()
    with _check_lock:
        client = _check_clients.get(url)
        if client is None:
            client = new_sync_client(
                url,
                socket_timeout=CHECK_TIMEOUT,
                socket_connect_timeout=CHECK_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
            _check_clients[url] = client
        return client


def renew_now(fence: Fence) -> int | None:
    """Renew the attempt's lease now, blocking (any thread): ``fence.OK`` (and the fence is
    trusted again), ``LOST`` or ``ENDED``; None when Redis cannot be reached (nothing is
    known: the writes stay fenced in Redis)."""
    sent = time.monotonic()
    index, run_id, deadline = deadline_args(fence)
    try:
        got = cast(
            int,
            _check_client().eval(
                RENEW_RUN,
                3,
                fence.lease,
                fence.record,
                index,
                fence.token,
                fence.ttl_ms,
                run_id,
                deadline,
            ),
        )
    except CONNECTION_ERRORS:
        return None
    if got == OK:
        fence.renewed(sent)
    return int(got)
