"""Every Redis key and stream name aiflow-nb uses, built in this one module.

Per-run keys carry the run id as a hash tag (``{run_id}``) so that on a Redis
Cluster all of one run's keys live in one slot.
"""

from __future__ import annotations

from .config import namespace

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
    "idempotency",
    "monitor_lock",
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


def _ns() -> str:
    return namespace()


def run(run_id: str) -> str:
    """Hash: the run record."""
    return f"{_ns()}:run:{{{run_id}}}"


def run_events(run_id: str) -> str:
    """Stream: the run's events, in order."""
    return f"{_ns()}:run:{{{run_id}}}:events"


def run_journal(run_id: str) -> str:
    """Hash: step key -> recorded result."""
    return f"{_ns()}:run:{{{run_id}}}:journal"


def run_seed(run_id: str) -> str:
    """Hash: a rerun's copy of its source run's journal (step key -> recorded result),
    taken at submit; steps whose code and arguments are unchanged replay from it."""
    return f"{_ns()}:run:{{{run_id}}}:seed"


def run_lease(run_id: str) -> str:
    """String with TTL: the id of the worker executing the run."""
    return f"{_ns()}:run:{{{run_id}}}:lease"


def timers() -> str:
    """Sorted set: parked run id -> due time (epoch s) of its earliest timed wait (the
    monitor's timer index: ``sleep`` and the deadlines of ``wait_for_*``)."""
    return f"{_ns()}:timers"


def runs() -> str:
    """Sorted set: every run id by creation time."""
    return f"{_ns()}:runs"


def workflow_runs(workflow: str) -> str:
    """Sorted set: one workflow's run ids by creation time."""
    return f"{_ns()}:runs:wf:{workflow}"


def running() -> str:
    """Set: ids of runs started and not yet ended (what the monitor watches)."""
    return f"{_ns()}:running"


def queue(version: str, workflow: str) -> str:
    """Stream with consumer group ``workers``: requests for runs of one workflow (by name,
    no code bundle) in one deployment version. The version is the hash tag, so one
    XREADGROUP over all the queues a worker serves stays in one Cluster slot."""
    return f"{_ns()}:queue:{{{version}}}:wf:{workflow}"


def code_queue(version: str, resumed: bool = False) -> str:
    """Stream with consumer group ``workers``: requests for runs of registered notebook
    code (runs with a ``code`` bundle) in one deployment version; ``resumed``: those put
    back after their worker died or handed them back (the code worker daemon reads only
    these, so a run starts in a kernel, with its environment, when one can take it)."""
    return f"{_ns()}:queue:{{{version}}}:code" + (":resumed" if resumed else "")


def queues(version: str) -> str:
    """Set: the queue streams of one version that ever had a request or a consumer (what
    the monitor sweeps and ``deployments()`` counts); same hash tag as the queues."""
    return f"{_ns()}:queues:{{{version}}}"


def daemon_start(host: str, version: str) -> str:
    """String with TTL: held by the process starting a machine's code worker daemon."""
    return f"{_ns()}:daemon:{host}:{version}"


def worker(worker_id: str) -> str:
    """Hash with TTL: a worker's heartbeat."""
    return f"{_ns()}:worker:{worker_id}"


def workers() -> str:
    """Sorted set: worker id -> last heartbeat time."""
    return f"{_ns()}:workers"


def cache(component: str, key: str) -> str:
    """String with TTL: a cached component output."""
    return f"{_ns()}:cache:{component}:{key}"


def code(digest: str) -> str:
    """String: source of a notebook-defined component or workflow."""
    return f"{_ns()}:code:{digest}"


def code_index() -> str:
    """Hash: workflow name -> digest of its latest registered code bundle."""
    return f"{_ns()}:code:index"


def ratelimit(name: str) -> str:
    """Hash: a shared rate limit's settings and token-bucket levels (name as hash tag)."""
    return f"{_ns()}:ratelimit:{{{name}}}"


def ratelimit_inflight(name: str) -> str:
    """Sorted set: holders of a rate limit's concurrency slots -> expiry (ms)."""
    return f"{_ns()}:ratelimit:{{{name}}}:inflight"


def ratelimits() -> str:
    """Set: names of the rate limits configured in this namespace."""
    return f"{_ns()}:ratelimits"


def cancel_channel() -> str:
    """Pub/sub channel carrying ids of runs to cancel."""
    return f"{_ns()}:cancel"


def idempotency(key: str) -> str:
    """String: run id created for an idempotency key."""
    return f"{_ns()}:idem:{key}"


def deploy_active() -> str:
    """String: the deployment version new runs are pinned to."""
    return f"{_ns()}:deploy:active"


def deployments() -> str:
    """Sorted set: known deployment versions by first use."""
    return f"{_ns()}:deployments"


def monitor_lock() -> str:
    """String with TTL: held by the one monitor acting at a time."""
    return f"{_ns()}:monitor:lock"


def side_effects(run_id: str) -> str:
    """Hash: step key -> times its body ran (the chaos example's outside-the-worker count)."""
    return f"{_ns()}:run:{{{run_id}}}:effects"


def expiry() -> str:
    """Sorted set: ``<run id> <workflow>`` of each finished run -> when its keys expire
    (epoch seconds); the monitor drops expired runs from the run indexes."""
    return f"{_ns()}:expiry"


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
