"""``config.use_namespace``: one context reads another namespace (a dashboard session's
``?ns=``) while the process keeps its own; a ``Follower`` made inside follows there."""

from __future__ import annotations

import secrets

import pytest

from aiflow_nb import config, keys
from aiflow_nb.config import settings, use_namespace
from aiflow_nb.errors import ConfigError
from aiflow_nb.events.model import FIELD, make_payload
from aiflow_nb.store import sync_redis
from aiflow_nb.trace import Follower

from support.helpers import wait_for


def test_keys_follow_the_override_inside_the_block_only(namespace: str) -> None:
    assert keys.run("r1") == f"{{{namespace}:0}}:run:r1"
    with use_namespace("other"):
        assert keys.run("r1") == "{other:0}:run:r1" and keys.runs(0) == "{other:0}:runs"
        with use_namespace("third"):
            assert keys.run_events("r1") == "{third:0}:run:r1:events"
        assert keys.runs(0) == "{other:0}:runs" and keys.workers() == "{other}:workers"
        assert settings().namespace == namespace  # the process setting is untouched
    assert keys.runs(0) == f"{{{namespace}:0}}:runs" and config.namespace() == namespace


def test_an_empty_namespace_is_refused() -> None:
    with pytest.raises(ConfigError, match="must not be empty"), use_namespace(""):
        pass


def test_a_follower_made_in_another_namespace_follows_there_on_its_thread(
    namespace: str,
) -> None:
    other, run_id = f"o{secrets.token_hex(4)}", "r" + secrets.token_hex(6)
    r = sync_redis()
    with use_namespace(other):
        stream = keys.run_events(run_id)
        r.hset(keys.run(run_id), "status", "running")
        r.xadd(stream, {FIELD: make_payload("run.started", run_id)})
        follower = Follower(run_id, block_ms=100).start()
    assert follower.namespace == other and config.namespace() == namespace
    try:
        wait_for(lambda: follower.pending() == 1, what="the replayed event")
        r.xadd(stream, {FIELD: make_payload("log", run_id, data={"message": "live"})})
        # the same run id in the process's namespace: never read by this follower
        r.xadd(keys.run_events(run_id), {FIELD: make_payload("log", run_id, data={"x": 1})})
        wait_for(lambda: follower.pending() == 2, what="the live event")
        events = follower.drain()
        assert [e.type for e in events] == ["run.started", "log"]
        assert events[1].data == {"message": "live"} and follower.error is None
    finally:
        follower.stop()


def test_no_in_process_worker_starts_for_a_run_of_another_namespace() -> None:
    """Its thread would serve the process's namespace, never that run's."""
    from aiflow_nb.ops.local import ensure_local_worker, local_worker

    assert local_worker() is None
    with use_namespace(f"o{secrets.token_hex(4)}"):
        assert ensure_local_worker(workflow="trace_fan_out") is None
    assert local_worker() is None
    started = ensure_local_worker(workflow="trace_fan_out")  # in its own namespace: yes
    assert started is not None and local_worker() is started
