"""Every Redis key and stream name aiflow-nb uses, built in this one module.

Partitions. A namespace has ``P`` partitions (``AIFLOW_PARTITIONS``, default 1; fixed
once chosen: the first process stores it in ``{<ns>}:partitions`` and the stored count
wins, see ``store/partitions.py``). A run's partition is derived from its id
(``partition_of``: the id's first 16 bits modulo ``P``; ``ops.submit.new_run_id`` mints
an id in a chosen partition). Every key is built from a Redis Cluster hash tag:

- ``{<ns>:<p>}`` (``partition_tag(p)``): every key of a run in partition ``p``
  (``run_keys``) and every per-run index of that partition: the queues of each version
  and their index, the running set, the creation-time indexes, the timers, the expiry
  index, the lease deadlines, the idempotency keys whose runs it holds
  (``idempotency_partition``). So a run's writes (its record, events and journal with
  its queue entry, running/expiry/timer entries and index entries) are one slot;
- ``{<ns>}`` (``meta_tag()``): the namespace's metadata: deployments and the active one,
  code bundles and their index, workers and their heartbeats, rate limit names, the
  monitor lock, the partition count and the workers' peer groups (who shares which
  partitions);
- keys with a hash tag of their own, never written in a run's transaction: a rate
  limit's (``{name}``), and the cache entries (no tag: each its own slot).

With ``P = 1`` every run key is in the slot of ``{<ns>:0}`` and every metadata key in
the slot of ``{<ns>}``: what ``tests/test_slots.py`` checks each transaction and script
against (on one node too).
"""

from __future__ import annotations

import string
import zlib
from collections.abc import Callable

from .config import namespace, settings

__all__ = [
    "cache",
    "cancel_channel",
    "code",
    "code_index",
    "code_queue",
    "daemon_start",
    "deploy_active",
    "deployments",
    "expiry",
    "forget_partitions",
    "idempotency",
    "idempotency_partition",
    "install_partition_source",
    "lease_deadlines",
    "meta_tag",
    "monitor_lock",
    "partition_count",
    "partition_of",
    "partition_tag",
    "partitions",
    "patterns",
    "peers",
    "queue",
    "queue_group",
    "queues",
    "ratelimit",
    "ratelimit_inflight",
    "ratelimits",
    "run",
    "run_events",
    "run_journal",
    "run_keys",
    "run_lease",
    "run_seed",
    "running",
    "runs",
    "side_effects",
    "timers",
    "worker",
    "workers",
    "workflow_runs",
]

queue_group = "workers"
"""Consumer group name on every queue stream."""

_HEX = frozenset(string.hexdigits)
_source: Callable[[], int | None] | None = None
_fixed: dict[str, int] = {}


def _ns() -> str:
    return namespace()


def install_partition_source(source: Callable[[], int | None]) -> None:
    """Have ``partitions()`` ask ``source`` (``store/partitions.py``: the count stored in
    Redis) the first time per namespace; ``source`` returns None when it cannot tell."""
    global _source
    _source = source
    _fixed.clear()


def forget_partitions() -> None:
    """Forget the counts read (after ``configure()`` changed the Redis or namespace)."""
    _fixed.clear()


def partitions() -> int:
    """The namespace's partition count: the one stored in Redis, else the setting."""
    ns = _ns()
    found = _fixed.get(ns)
    if found is not None:
        return found
    stored = _source() if _source is not None else None
    if stored is None:
        return settings().partitions
    _fixed[ns] = stored
    return stored


def partition_of(run_id: str) -> int:
    """The partition of a run: its id's first 4 hex digits modulo the partition count
    (an id not minted by ``new_run_id`` hashes with CRC-32)."""
    count = partitions()
    if count == 1:
        return 0
    head = run_id[:4]
    if len(head) == 4 and _HEX.issuperset(head):
        return int(head, 16) % count
    return zlib.crc32(run_id.encode()) % count


def idempotency_partition(key: str) -> int:
    """The partition of an idempotency key (and of the run submitted with it)."""
    count = partitions()
    return 0 if count == 1 else zlib.crc32(key.encode()) % count


def partition_tag(partition: int) -> str:
    """The hash tag of one partition's keys: ``{<ns>:<partition>}``."""
    return f"{{{_ns()}:{partition}}}"


def meta_tag() -> str:
    """The hash tag of the namespace's metadata keys: ``{<ns>}``."""
    return f"{{{_ns()}}}"


def patterns() -> list[str]:
    """``SCAN MATCH`` patterns that together match every key of the namespace."""
    ns = _ns()
    return [f"{{{ns}}}:*", f"{{{ns}:*}}:*", f"{ns}:*"]


def _run(run_id: str) -> str:
    return f"{partition_tag(partition_of(run_id))}:run:{run_id}"


# --- a run's keys (its partition's slot) -------------------------------------------


def run(run_id: str) -> str:
    """Hash: the run record."""
    return _run(run_id)


def run_events(run_id: str) -> str:
    """Stream: the run's events, in order."""
    return f"{_run(run_id)}:events"


def run_journal(run_id: str) -> str:
    """Hash: step key -> recorded result."""
    return f"{_run(run_id)}:journal"


def run_seed(run_id: str) -> str:
    """Hash: a rerun's copy of its source run's journal (step key -> recorded result),
    taken at submit; steps whose code and arguments are unchanged replay from it."""
    return f"{_run(run_id)}:seed"


def run_lease(run_id: str) -> str:
    """String with TTL: the id of the worker executing the run."""
    return f"{_run(run_id)}:lease"


def side_effects(run_id: str) -> str:
    """Hash: step key -> times its body ran (the chaos example's outside-the-worker count)."""
    return f"{_run(run_id)}:effects"


def run_keys(run_id: str) -> list[str]:
    """Every per-run key (one hash slot): what retention expires and ``delete`` removes.
    A new per-run key must be listed here."""
    return [
        run(run_id),
        run_events(run_id),
        run_journal(run_id),
        run_seed(run_id),
        run_lease(run_id),
        side_effects(run_id),
    ]


# --- a partition's indexes (its slot) ------------------------------------------------


def timers(partition: int) -> str:
    """Sorted set: parked run id -> due time (epoch s) of its earliest timed wait (the
    monitor's timer index: ``sleep`` and the deadlines of ``wait_for_*``)."""
    return f"{partition_tag(partition)}:timers"


def runs(partition: int) -> str:
    """Sorted set: the partition's run ids by creation time."""
    return f"{partition_tag(partition)}:runs"


def workflow_runs(workflow: str, partition: int) -> str:
    """Sorted set: one workflow's run ids (of the partition) by creation time."""
    return f"{partition_tag(partition)}:runs:wf:{workflow}"


def running(partition: int) -> str:
    """Set: ids of the partition's runs started and not yet ended."""
    return f"{partition_tag(partition)}:running"


def lease_deadlines(partition: int) -> str:
    """Sorted set: id of each of the partition's running runs -> when its lease runs out
    (epoch s; each renewal moves it): what the monitor reads instead of every
    running run."""
    return f"{partition_tag(partition)}:leases"


def expiry(partition: int) -> str:
    """Sorted set: ``<run id> <workflow>`` of each of the partition's finished runs ->
    when its keys expire (epoch seconds); the monitor drops expired runs from the run
    indexes."""
    return f"{partition_tag(partition)}:expiry"


def queue(version: str, workflow: str, partition: int) -> str:
    """Stream with consumer group ``workers``: requests for runs of one workflow (by name,
    no code bundle) in one deployment version and partition."""
    return f"{partition_tag(partition)}:queue:{version}:wf:{workflow}"


def code_queue(version: str, resumed: bool, partition: int) -> str:
    """Stream with consumer group ``workers``: requests for runs of registered notebook
    code (runs with a ``code`` bundle) in one deployment version and partition;
    ``resumed``: those put back after their worker died or handed them back (the code
    worker daemon reads only these, so a run starts in a kernel, with its environment,
    when one can take it)."""
    return f"{partition_tag(partition)}:queue:{version}:code" + (":resumed" if resumed else "")


def queues(version: str, partition: int) -> str:
    """Set: the partition's queue streams of one version that ever had a request or a
    consumer (what the monitor sweeps and ``deployments()`` counts)."""
    return f"{partition_tag(partition)}:queues:{version}"


def idempotency(key: str) -> str:
    """String: run id created for an idempotency key (in the key's partition, which is
    the run's)."""
    return f"{partition_tag(idempotency_partition(key))}:idem:{key}"


# --- namespace metadata (one slot) ------------------------------------------------


def daemon_start(host: str, version: str) -> str:
    """String with TTL: held by the process starting a machine's code worker daemon."""
    return f"{meta_tag()}:daemon:{host}:{version}"


def worker(worker_id: str) -> str:
    """Hash with TTL: a worker's heartbeat."""
    return f"{meta_tag()}:worker:{worker_id}"


def workers() -> str:
    """Sorted set: worker id -> last heartbeat time."""
    return f"{meta_tag()}:workers"


def code(digest: str) -> str:
    """String: source of a notebook-defined component or workflow."""
    return f"{meta_tag()}:code:{digest}"


def code_index() -> str:
    """Hash: workflow name -> digest of its latest registered code bundle."""
    return f"{meta_tag()}:code:index"


def ratelimits() -> str:
    """Set: names of the rate limits configured in this namespace."""
    return f"{meta_tag()}:ratelimits"


def deploy_active() -> str:
    """String: the deployment version new runs are pinned to."""
    return f"{meta_tag()}:deploy:active"


def deployments() -> str:
    """Sorted set: known deployment versions by first use."""
    return f"{meta_tag()}:deployments"


def monitor_lock() -> str:
    """String with TTL: held by the one monitor acting at a time."""
    return f"{meta_tag()}:monitor:lock"


def partition_count() -> str:
    """String: the namespace's partition count (set once, ``SET NX``)."""
    return f"{meta_tag()}:partitions"


def peers(group: str) -> str:
    """Sorted set: worker id -> last heartbeat of the live, active workers of one group
    (same version, workflows and code runs: a digest of them); they share the partitions
    (``ops/worker.py``), so each partition is read by one of them."""
    return f"{meta_tag()}:peers:{group}"


# --- keys of their own slot ----------------------------------------------------------


def cache(component: str, key: str) -> str:
    """String with TTL: a cached component output (never written in a run's batch)."""
    return f"{_ns()}:cache:{component}:{key}"


def ratelimit(name: str) -> str:
    """Hash: a shared rate limit's settings and token-bucket levels (name as hash tag)."""
    return f"{_ns()}:ratelimit:{{{name}}}"


def ratelimit_inflight(name: str) -> str:
    """Sorted set: holders of a rate limit's concurrency slots -> expiry (ms)."""
    return f"{_ns()}:ratelimit:{{{name}}}:inflight"


def cancel_channel() -> str:
    """Pub/sub channel carrying ids of runs to cancel."""
    return f"{_ns()}:cancel"
