"""Leases: string keys whose value is the id of their one holder, with a TTL (a run's
``{ns}:run:{<id>}:lease``, held by its worker; ``{ns}:monitor:lock``, held by the acting
monitor). The Lua scripts here change one only while its holder still holds it, so a
holder that stalled past the TTL never renews or frees a lease taken over by another.

Each is ``EVAL <script> 1 <key> <holder> [<ttl ms>]``, e.g.
``pipe.eval(leases.RELEASE, 1, keys.run_lease(run_id), worker_id)``.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "RELEASE", "RENEW"]

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
