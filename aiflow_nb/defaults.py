"""Every tunable default in one place, each with its unit."""

from __future__ import annotations

NAMESPACE = "aiflow"
"""Key prefix, so several projects can share one Redis."""

VERSION = "default"
"""Deployment version used when none is configured and none is deployed."""

DEPLOY_CACHE_TTL = 1.0
"""Seconds a process keeps the active deployment it read (``submit`` reads it once per
this long, not once per run); ``deploy()`` in the same process updates it at once, other
processes follow within this long."""

PARTITIONS = 1
"""Partitions of a namespace (``AIFLOW_PARTITIONS``): 1 on a single Redis; e.g. 64 on a
Redis Cluster, so runs spread over its masters (``keys.py``)."""

MAX_PARTITIONS = 4096
"""The most partitions a namespace may have (a run id's first 16 bits choose one)."""

HEARTBEAT_INTERVAL = 2.0
"""Seconds between two worker heartbeats."""

HEARTBEAT_TTL = 10.0
"""Seconds after the last heartbeat at which a worker (and its run leases) count as dead."""

FENCE_TRUST = 0.8
"""Fraction of ``heartbeat_ttl`` after a lease renewal during which an attempt trusts that
it still holds its run (its fencing token is current). A write later than that (the
worker stalled, e.g. SIGSTOP) first re-checks the token with Redis, one round trip, so a
stalled attempt never starts another step beside the attempt that took the run over."""

WRITER_MAX_UNSENT = 10_000
"""Writes (events, journal entries, record and cache updates) a run's writer keeps, in
order, while Redis is unreachable. They are re-sent once it is back; past this many the
run is stopped and ends ``failed`` (``WriteBacklogFull``) instead of dropping any."""

WRITER_YIELD_OPS = 256
"""Writes a run's writer holds before an async step yields to the event loop once: async
code that never suspends (steps that await nothing slow) would otherwise send nothing
until the run ends, so a watcher would see nothing live and Redis would take the whole
run in one batch at the end instead of alongside."""

WRITER_RETRY_INITIAL = 0.05
"""Seconds a run's writer waits before its first re-send after a Redis connection error
(doubling, jittered, up to ``WRITER_RETRY_MAX``)."""

WRITER_RETRY_MAX = 1.0
"""Seconds, the longest wait between two re-sends of a run's unsent writes."""

RETENTION = 7 * 86400.0
"""Seconds a finished run (completed, failed, cancelled) is kept after it ends; then every
key of the run expires and the monitor drops it from the run indexes
(``AIFLOW_RETENTION``; ``@workflow(retention=...)`` overrides it per workflow)."""

RETENTION_MAX = 100 * 365 * 86400.0
"""Seconds; a longer retention (``99999999999d`` for "forever") is kept this long: Redis
refuses a TTL whose expiry time passes 64 bits of milliseconds."""

EXPIRY_SWEEP_BATCH = 1000
"""Expired runs the monitor drops from the run indexes per sweep at most."""

PRUNE_PAGE = 500
"""Runs ``aiflow prune`` / ``aiflow archive`` read (and delete) per round trip."""

STREAM_NODE_MAX_BYTES = 1024
"""Bytes, the embedded Redis's ``stream-node-max-bytes``: Redis allocates a stream's last
node this large up front (``min(4096, this)``), so it is what a short run's event stream
costs at least; a long run's stream is just made of more nodes. Set it on your own Redis
(``REDIS_URL``) too for the same per-run figures."""

MAX_RESTARTS = 3
"""How many times a crashed run is resumed before it ends ``failed`` with reason ``crashed``."""

WORKER_CONCURRENCY = 64
"""Runs one worker executes at once."""

QUEUE_BLOCK_MS = 500
"""Milliseconds a worker blocks on the queue before checking for shutdown."""

PARTITION_BLOCK_MIN_MS = 50
"""A worker reading several partitions blocks on one at a time, in turn, for
``QUEUE_BLOCK_MS`` / partitions, at least this (ms)."""

UNANSWERED_CHECK_INTERVAL = 5.0
"""Seconds between a worker's looks at its own pending queue entries of runs it does not
hold (a read whose reply was lost: an outage its client's retry hid, or a previous life
under the same worker id); also once at start."""

FOLLOW_BLOCK_MS = 1000
"""Milliseconds a stream reader blocks per XREAD while following a run."""

REPLAY_PAGE = 2000
"""Events fetched per XRANGE page while replaying a run."""

CACHE_TTL = 24 * 3600.0
"""Seconds a cached component output lives when ``with_cache()`` gives no ttl."""

RETRY_INITIAL = 0.5
"""Seconds of the first backoff wait."""

RETRY_MAX_DELAY = 30.0
"""Seconds, upper bound of one backoff wait."""

DRAIN_TIMEOUT = 60.0
"""Seconds a SIGTERM'd worker lets runs in hand finish before handing them back."""

EXIT_DRAIN_TIMEOUT = 0.5
"""Seconds an in-process worker lets runs in hand go on at interpreter exit before it
hands them back (a kernel restart re-queues its runs at once instead of stalling them)."""

DAEMON_START_TTL = 30.0
"""Seconds one process may take to start this machine's code worker daemon before
another may try (the start lock's TTL)."""

REDIS_CONNECT_TIMEOUT = 5.0
"""Seconds to wait when connecting to Redis."""

REDIS_RETRIES = 3
"""Times a Redis client re-sends a command after a connection error before it raises
(redis-py's ``Retry``; the long-lived loops then back off on their own, see below)."""

SHARDED_PUBSUB_POLL = 1.0
"""Seconds a sharded pub/sub subscriber (on a Redis Cluster) waits for a message before
asking again: redis-py's sharded pub/sub has no blocking iterator (``store.channels``)."""

REDIS_RETRY_BASE = 0.05
"""Seconds, the first wait of a client's retries (doubling, full jitter)."""

REDIS_RETRY_CAP = 0.5
"""Seconds, the longest wait between two of a client's retries."""

OUTAGE_BACKOFF_BASE = 0.1
"""Seconds a long-lived loop (worker, monitor, reader) waits after its first failed
attempt to reach Redis (doubling per attempt, full jitter, up to ``OUTAGE_BACKOFF_CAP``)."""

OUTAGE_BACKOFF_CAP = 1.0
"""Seconds, the longest wait between two attempts of a loop to reach Redis again: how
late, at most, a loop notices that Redis is back."""

CODE_REGISTER_RETRY = 5.0
"""Seconds a kernel waits, after failing to reach Redis, before it tries again to register
the cells defined meanwhile (the next magic or cell then tries; earlier ones do not, so a
kernel without Redis stays quick)."""

API_OUTAGE_PATIENCE = 1.0
"""Seconds an API event stream waits for Redis before it ends with an ``interrupted``
message (the client resumes with ``Last-Event-ID``; meanwhile requests answer 503)."""

MONITOR_INTERVAL = 0.5
"""Seconds between two sweeps of the monitor (dead workers' runs are found this often)."""

LAPSED_BATCH = 200
"""Runs whose lease deadline passed one monitor sweep checks at most per partition."""

ORPHAN_SCAN_INTERVAL = 60.0
"""Seconds between the monitor's full scans of every running run (a safety net: each
sweep reads only the runs whose lease deadline passed, ``keys.lease_deadlines``)."""

NOTIFY_ATTEMPTS = 5
"""Attempts a crashed-run notification POST makes before it is given up (logged)."""

NOTIFY_BACKOFF = 0.5
"""Seconds of the first wait between two notification attempts (doubles each time)."""

NOTIFY_TIMEOUT = 5.0
"""Seconds one notification POST may take."""

API_HOST = "127.0.0.1"
"""Address ``aiflow api`` binds to by default (loopback)."""

API_PORT = 8000
"""TCP port ``aiflow api`` listens on by default."""

API_MAX_BODY = 1024 * 1024
"""Bytes, the largest request body the REST API accepts (larger: 413)."""

API_KEEPALIVE = 15.0
"""Seconds of silence after which an event stream sends a keep-alive comment."""

API_SSE_RETRY = 1000
"""Milliseconds a browser ``EventSource`` waits before reconnecting (the SSE ``retry:``)."""

API_RUN_WAIT = 300.0
"""Seconds ``POST /workflows/{name}/run`` waits for the output before answering 202."""

API_MAX_WAIT = 3600.0
"""Seconds, the largest ``wait`` a client may ask for."""

API_TOKEN_TTL = 3600.0
"""Seconds a scoped run token lives by default."""

API_TOKEN_MAX_TTL = 7 * 24 * 3600.0
"""Seconds, the longest life a scoped run token may be given."""

API_RETRY_AFTER = 5
"""Seconds a client is told to wait (``Retry-After``) when Redis is unreachable."""

API_PAGE_LIMIT = 50
"""Runs per page of ``GET /runs`` when no ``limit`` is given (at most 1000)."""

API_MAX_NESTING = 64
"""Levels of lists and objects a request body may nest (deeper: 422). JSON values are
stored with orjson, which stops at 255 levels; 64 is far past any real input."""

API_MAX_FIELD_ERRORS = 20
"""Field errors a 422 answer lists at most; the rest are counted (``more_fields``)."""

API_INT_MIN = -(2**63)
"""The smallest integer a request body may hold (a signed 64-bit integer; smaller: 422)."""

API_INT_MAX = 2**64 - 1
"""The largest integer a request body may hold (an unsigned 64-bit integer; larger: 422,
never rounded to a float)."""

API_REDIS_CONNECTIONS = 1000
"""Connections the API's async Redis pool opens at most (followers and waiters share it)."""

API_REDIS_WAIT = 20.0
"""Seconds a request waits for a free Redis connection before failing with 503."""

VIEWER_PORT = 5006
"""TCP port ``aiflow viewer`` listens on by default (0 picks a free one)."""

VIEWER_TICK_MS = 200
"""Milliseconds between two checks of a run page for new events (also its redraw throttle)."""

VIEWER_RUNS_POLL_MS = 500
"""Milliseconds between two refreshes of the viewer's runs table."""

VIEWER_RUNS_LIMIT = 200
"""Runs the viewer's runs table lists at most (newest first)."""

VIEWER_REDIS_RETRY_MS = 2000
"""ms between the dashboard's tries to reach Redis while it is unreachable."""

EXPORT_TIMEOUT = 10.0
"""Seconds one OTLP export request may take."""

EXPORT_POLL_INTERVAL = 1.0
"""Seconds between two checks for ended runs in ``aiflow export otlp --follow``."""

EXPORT_FOLLOW_WINDOW = 500
"""Newest runs ``aiflow export otlp --follow`` checks on each poll."""

WIDGET_REFRESH = 0.1
"""Seconds between two redraws of a live run widget at most (coalesces bursts of events)."""

WIDGET_POLL_MS = 250
"""Milliseconds a live run widget blocks per XREAD while following a run."""

WIDGET_MAX_SPANS = 200
"""Span rows a run widget's tree shows at most (the rest are counted, not drawn)."""

WIDGET_MAX_PROGRESS = 20
"""Progress bars a run widget shows at most (the most recent streams)."""

WIDGET_MAX_TEXT = 20_000
"""Characters of streamed LLM text a run widget keeps per span (the tail)."""

RETRY_AFTER_MAX = 120.0
"""Seconds, the longest server-directed wait (``Retry-After``) a retry honours."""

LLM_RETRY_ATTEMPTS = 5
"""Attempts an LLM call makes on each provider (rate limits, timeouts, 5xx) before it
falls back or fails."""

LLM_RETRY_INITIAL = 0.5
"""Seconds of an LLM call's first backoff wait when the provider gives no Retry-After."""

LLM_RETRY_MAX_DELAY = 20.0
"""Seconds, upper bound of one LLM backoff wait (a Retry-After may be longer)."""

LLM_OUTPUT_TOKENS_ESTIMATE = 256
"""Tokens reserved in a tokens-per-minute bucket for a call's output when the request
sets no ``max_tokens`` (settled against the real usage afterwards)."""

RATE_LIMIT_BURST = 1.0
"""Seconds of a rate limit's budget that may be spent at once (bucket capacity)."""

RATE_LIMIT_LEASE_TTL = 600.0
"""Seconds a concurrency slot stays taken if its holder dies without releasing it."""

RATE_LIMIT_POLL = 0.02
"""Seconds between two checks for a free concurrency slot."""

RATE_LIMIT_NAMES_TTL = 1.0
"""Seconds a process trusts its list of declared rate limits (a limit declared by another
process applies to this one's LLM calls within this time)."""

FAKE_LLM_PORT = 8787
"""TCP port ``aiflow fake-llm`` listens on by default."""

FAKE_LLM_TOKENS_PER_S = 200.0
"""Tokens per second the local LLM server generates by default (0: instant)."""

MAX_VALUE_BYTES = 16 * 1024 * 1024
"""Bytes of JSON, the largest value a run stores: its inputs, its output, one step's
result (``AIFLOW_MAX_VALUE_BYTES``). A larger one raises ``ValueTooLarge`` where it is
made (``start``/``submit``: nothing written; a step: its span fails)."""

EVENT_VALUE_INLINE_BYTES = 16 * 1024
"""Bytes of JSON up to which an event carries a run's inputs or output, or a step's
result, itself. A larger value is stored once (run record or journal) and the event
carries a reference (``<name>_ref``: where it is, its size and a preview)."""

EVENT_VALUE_PREVIEW_CHARS = 500
"""Characters of a value's JSON an event's reference to it shows (``preview``)."""

EVENT_MESSAGE_CHARS = 4096
"""Characters of an error message an event carries (longer ones are cut; the run
record's ``error`` keeps the full message)."""

EVENT_TRACEBACK_CHARS = 16384
"""Characters of a traceback an event carries (its first quarter and its end are kept)."""
