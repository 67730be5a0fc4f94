"""Retention on real runs through real worker processes: every key of a finished run
expires with its index entries (memory and key count back to the baseline), waiting runs
never do, a resumed run's keys are kept again; delete and prune remove runs now."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import aiflow_nb
from aiflow_nb import keys, workflow
from aiflow_nb.access.handle import RunHandle, attach
from aiflow_nb.cli import cli
from aiflow_nb.config import Settings, parse_duration
from aiflow_nb.errors import ConfigError, RunNotFound, RunStateError
from aiflow_nb.notebook.cells import WorkflowOptions, build_source
from aiflow_nb.ops.retention import prune
from aiflow_nb.ops.submit import cancel, submit
from aiflow_nb.store import sync_redis

from support.helpers import namespace_keys
from support.ops import fleet, taken_by_dead_worker, wait_for

SHORT = {"AIFLOW_RETENTION": "2s"}


def _ns_keys(namespace: str) -> set[str]:
    return namespace_keys(sync_redis())


def _run_keys(namespace: str) -> set[str]:
    return {k for k in _ns_keys(namespace) if ":run:" in k}


def _used_memory() -> int:
    """INFO's ``used_memory`` less the clients' buffers (connections, not stored data)."""
    info = sync_redis().info("memory")
    return int(info["used_memory"]) - int(info["mem_clients_normal"])


def _short_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFLOW_RETENTION", "2s")
    aiflow_nb.configure()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600.0), ("90s", 90.0), ("12h", 43200.0), ("7d", 604800.0), ("1.5m", 90.0)],
)
def test_retention_parses_durations(
    text: str, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIFLOW_RETENTION", text)
    assert Settings.from_env().retention == seconds
    assert workflow(retention=text)(lambda: None).retention == seconds


def test_retention_default_is_seven_days_and_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIFLOW_RETENTION", raising=False)
    assert Settings.from_env().retention == 7 * 86400
    for bad in ("abc", "0", "-5s", "7x", "1e400", "inf"):
        monkeypatch.setenv("AIFLOW_RETENTION", bad)
        with pytest.raises(ConfigError, match="AIFLOW_RETENTION must be a positive duration"):
            Settings.from_env()
    with pytest.raises(ConfigError, match="retention must be a positive duration"):
        workflow(retention="soon")
    with pytest.raises(ConfigError, match="retention"):
        parse_duration(True, "retention")  # type: ignore[arg-type]


def test_workflow_cell_retention_goes_into_its_registered_source() -> None:
    cell = build_source("workflow", "wf", "def wf():\n    return 1\n", WorkflowOptions(7200.0))
    assert cell.source.endswith("wf = __aiflow_workflow__(wf, name='wf', retention=7200.0)\n")
    namespace: dict[str, Any] = {}
    exec(compile(cell.source, "cell", "exec"), namespace)
    assert namespace["wf"].retention == 7200.0


def test_finished_runs_expire_with_every_key_and_index_entry(
    tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _short_retention(monkeypatch)  # the test process's own writes (cancel) too
    r = sync_redis()
    with fleet(tmp_path) as start:
        start(env=SHORT).ready()
        warm = [RunHandle(submit("one_step", {"x": i})) for i in range(5)]
        for h in warm:
            h.result(timeout=30)
        wait_for(lambda: r.zcard(keys.runs(0)) == 0, 30, "the warm-up runs to expire")
        base_keys, base_memory = _ns_keys(namespace), _used_memory()
        waiting = RunHandle(submit("nobody_serves_this", {}))
        handles = [RunHandle(submit("one_step", {"x": i})) for i in range(300)]
        for h in handles:
            h.result(timeout=60)
        grown = _used_memory() - base_memory
        assert grown > 100 * 1000  # the finished runs are there at first
        last = RunHandle(submit("steps", {"n": 2, "delay": 0.0}))  # a journal, side effects
        assert last.result(timeout=30) == [0, 1]
        cancelled = RunHandle(submit("nobody_serves_this", {}))
        assert cancel(cancelled.run_id) == "cancelled"
        for key in keys.run_keys(last.run_id)[:3] + [keys.side_effects(last.run_id)]:
            assert 0 < r.pttl(key) <= 2000, key
        assert 0 < r.pttl(keys.run(cancelled.run_id)) <= 2000
        assert 0 < r.pttl(keys.run_events(cancelled.run_id)) <= 2000
        assert r.zscore(keys.expiry(0), f"{last.run_id} steps") is not None
        wait_for(lambda: r.zcard(keys.runs(0)) == 1, 30, "every finished run to expire")
        time.sleep(2.5)  # longer than the retention: the waiting run stays
        assert waiting.status == "queued"
        assert r.pttl(keys.run(waiting.run_id)) == -1
        assert _run_keys(namespace) == {keys.run(waiting.run_id), keys.run_events(waiting.run_id)}
        assert _ns_keys(namespace) - base_keys == set(_run_keys(namespace)) | {
            keys.workflow_runs("nobody_serves_this", 0),
            keys.runs(0),
            keys.queue("default", "nobody_serves_this", 0),
        }
        assert r.zrange(keys.runs(0), 0, -1) == [waiting.run_id.encode()]
        assert not r.exists(keys.workflow_runs("one_step", 0), keys.workflow_runs("steps", 0))
        assert r.zcard(keys.expiry(0)) == 0 and r.scard(keys.running(0)) == 0
        assert _used_memory() - base_memory < max(grown // 10, 64 * 1024)
    for gone in (handles[0], last, cancelled):
        with pytest.raises(RunNotFound):
            attach(gone.run_id)
        with pytest.raises(RunNotFound):
            gone.result(timeout=1)
    assert aiflow_nb.runs()["run_id"].tolist() == [waiting.run_id]


def test_a_workflows_retention_overrides_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    _short_retention(monkeypatch)

    @workflow(retention="90s")
    def kept_long(x: int) -> int:
        return x

    handle = kept_long.start(x=1)
    assert handle.result(timeout=30) == 1
    assert 2000 < sync_redis().pttl(keys.run(handle.run_id)) <= 90_000
    assert 2000 < sync_redis().pttl(keys.run_events(handle.run_id)) <= 90_000


def test_a_failed_run_resumed_stops_expiring_until_it_ends_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _short_retention(monkeypatch)
    go_on = threading.Event()
    attempts: list[int] = []

    @workflow
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        go_on.wait(30)
        return "ok"

    handle = flaky.start()
    assert handle.wait(timeout=30) == "failed"
    r = sync_redis()
    assert 0 < r.pttl(keys.run(handle.run_id)) <= 2000
    handle.resume()
    wait_for(lambda: handle.status == "running", 10, "the resumed run to start")
    assert r.pttl(keys.run(handle.run_id)) == -1 and r.pttl(keys.run_events(handle.run_id)) == -1
    assert r.zcard(keys.expiry(0)) == 0
    time.sleep(2.5)  # past the failed run's retention: kept, it runs
    go_on.set()
    assert handle.result(timeout=30) == "ok"
    assert 0 < r.pttl(keys.run(handle.run_id)) <= 2000
    assert r.zcard(keys.expiry(0)) == 1


def test_delete_removes_a_finished_run_now(tmp_path: Path, namespace: str) -> None:
    r = sync_redis()
    with fleet(tmp_path) as start:
        start().ready()
        done = RunHandle(submit("steps", {"n": 2, "delay": 0.0}, idempotency_key="k1"))
        going = RunHandle(submit("sleeper", {"seconds": 30}))
        assert done.result(timeout=30) == [0, 1]
        wait_for(lambda: going.status == "running", 15, "the sleeper to start")
        aiflow_nb.delete(done.run_id)
        assert not any(done.run_id in k for k in _ns_keys(namespace))
        assert r.zscore(keys.runs(0), done.run_id) is None
        assert r.zscore(keys.workflow_runs("steps", 0), done.run_id) is None
        assert r.zcard(keys.expiry(0)) == 0
        assert not r.exists(keys.idempotency("k1"))
        with pytest.raises(RunNotFound):
            attach(done.run_id)
        with pytest.raises(RunNotFound):
            aiflow_nb.delete(done.run_id)
        with pytest.raises(RunNotFound):
            aiflow_nb.show(done.run_id, follow=False)  # the dashboard's run page
        with pytest.raises(RunStateError, match="is running; only finished runs"):
            aiflow_nb.delete(going.run_id)
        assert going.status == "running"  # nothing of it was touched
        again = submit("steps", {"n": 1, "delay": 0.0}, idempotency_key="k1")
        assert again != done.run_id  # the key's run is gone: a new run is made
        going.cancel()
        going.wait(timeout=10)
        result = CliRunner().invoke(cli, ["delete", going.run_id, "no-such-run"])
    assert result.exit_code == 1
    assert f"deleted {going.run_id}" in result.output
    assert "no run with id 'no-such-run'" in result.output
    assert "1 deleted, 1 not" in result.output


def test_prune_deletes_finished_runs_older_than_by_workflow_and_status(tmp_path: Path) -> None:
    with fleet(tmp_path) as start:
        start().ready()
        ones = [RunHandle(submit("one_step", {"x": i})) for i in range(7)]
        steps = [RunHandle(submit("steps", {"n": 1, "delay": 0.0})) for _ in range(3)]
        for h in ones + steps:
            h.result(timeout=30)
        cancelled = RunHandle(submit("nobody_serves_this", {}))
        cancel(cancelled.run_id)
        waiting = RunHandle(submit("nobody_serves_this", {}))
        time.sleep(1.5)
        fresh = RunHandle(submit("one_step", {"x": 99}))
        fresh.result(timeout=30)
        assert prune(1.0, status="cancelled") == 1
        assert prune(1.0, workflow="steps") == 3
        seen: list[tuple[int, int]] = []
        assert prune(1.0, progress=lambda s, d: seen.append((s, d)), page=3) == 7
        assert seen[-1][1] == 7 and len(seen) >= 3  # page by page
        with pytest.raises(RunStateError, match="only finished runs are pruned"):
            prune(1.0, status="queued")
    left = set(aiflow_nb.runs()["run_id"])
    assert left == {fresh.run_id, waiting.run_id}
    for gone in ones + steps + [cancelled]:
        with pytest.raises(RunNotFound):
            gone.record()
    time.sleep(0.6)
    result = CliRunner().invoke(cli, ["prune", "--older-than", "0.5s"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 runs" in result.output  # fresh; the waiting run is kept
    assert CliRunner().invoke(cli, ["prune", "--older-than", "soon"]).exit_code == 2


def test_memory_stays_flat_in_a_soak_longer_than_the_retention(tmp_path: Path) -> None:
    """Runs keep finishing for 16 s with a 1 s retention: after the first seconds, Redis
    holds about one retention's worth of runs, however many have finished."""
    r = sync_redis()
    samples: list[tuple[float, int, int, int]] = []  # (t, finished, memory, indexed)
    finished = 0
    with fleet(tmp_path) as start:
        start(env={"AIFLOW_RETENTION": "1s"}).ready()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 16:
            batch = [RunHandle(submit("one_step", {"x": i})) for i in range(20)]
            for h in batch:
                h.wait(timeout=30)
            finished += len(batch)
            time.sleep(0.1)  # a steady flow, not a flood of the shared cores
            samples.append((time.monotonic() - t0, finished, _used_memory(), r.zcard(keys.runs(0))))
    steady = [s for s in samples if s[0] >= 5]
    half = len(steady) // 2
    early, late = steady[:half], steady[half:]
    window = steady[-1][1] - steady[0][1]
    assert window >= 200, samples  # enough runs finished meanwhile to show a growth
    # kept, the late half's runs would add ~2.3 KB each on top of the early half's peak;
    # flat means the late peak is within a quarter of that (noise: a second's runs)
    grown = max(s[2] for s in late) - max(s[2] for s in early)
    assert grown < (late[-1][1] - early[-1][1]) * 600, samples
    assert max(s[3] for s in steady) < window / 3, samples  # the index does not grow


def test_a_run_failed_by_a_crash_or_by_fail_run_expires_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiflow_nb.ops.monitor import Monitor
    from aiflow_nb.ops.recovery import fail_run
    from aiflow_nb.store import async_redis, run_in_new_loop

    _short_retention(monkeypatch)
    crashed = taken_by_dead_worker(restarts=3)
    sync_redis().hset(keys.run_journal(crashed.run_id), "steps/step#0", b"{}")
    broken = RunHandle(submit("steps", {"n": 1}, version="default"))
    kept = RunHandle(submit("steps", {"n": 1}, version="default", retention=600))
    for handle in (broken, kept):
        sync_redis().hset(keys.run(handle.run_id), "status", "running")
    sync_redis().hset(keys.run_journal(broken.run_id), "steps/step#0", b"{}")

    async def go() -> tuple[list[Any], bool, bool]:
        client = async_redis()
        monitor = Monitor(client, max_restarts=3)
        crashes = await monitor.sweep()
        await monitor.release()
        ended = await fail_run(client, broken.run_id, RuntimeError("executor bug"))
        ended_kept = await fail_run(client, kept.run_id, RuntimeError("executor bug"))
        return crashes, ended, ended_kept

    crashes, ended, ended_kept = run_in_new_loop(go())
    assert [c.outcome for c in crashes if c.run_id == crashed.run_id] == ["crashed"]
    assert ended and ended_kept
    r = sync_redis()
    for handle in (crashed, broken):
        assert handle.status == "failed"
        for key in keys.run_keys(handle.run_id)[:3]:  # record, events, journal
            assert 0 < r.pttl(key) <= 2000, key
    assert 2000 < r.pttl(keys.run(kept.run_id)) <= 600_000  # the run's own retention
    due = {m.decode().split()[0] for m in r.zrange(keys.expiry(0), 0, -1)}
    assert due == {crashed.run_id, broken.run_id, kept.run_id}


def test_resume_of_a_run_deleted_while_it_is_read_recreates_nothing(
    monkeypatch: pytest.MonkeyPatch, namespace: str
) -> None:
    """resume() read the failed run, then it was deleted (or expired) before the re-queue
    was sent: that re-queue wrote a record of one field (status queued) with no TTL and no
    index entry, and a queue entry a worker crashed on. Now it answers RunNotFound."""
    from aiflow_nb.ops import submit as submit_module
    from aiflow_nb.ops.recovery import fail_run
    from aiflow_nb.store import async_redis, run_in_new_loop

    handle = RunHandle(submit("nobody_serves_this", {"a": 1}))

    async def fail() -> bool:
        return await fail_run(async_redis(), handle.run_id, RuntimeError("bug"))

    assert run_in_new_loop(fail())
    assert handle.status == "failed"
    read = submit_module._status

    def read_then_deleted(r: Any, run_id: str) -> dict[str, str]:
        state = read(r, run_id)
        if sync_redis().exists(keys.run(run_id)):
            aiflow_nb.delete(run_id)  # from another client, right after the read
        return state

    monkeypatch.setattr(submit_module, "_status", read_then_deleted)
    with pytest.raises(RunNotFound):
        aiflow_nb.resume(handle.run_id)
    assert _run_keys(namespace) == set()
    queues = [k for k in _ns_keys(namespace) if ":queue:" in k]
    entries = [f for k in queues for _, f in sync_redis().xrange(k)]
    assert not [f for f in entries if f.get(b"resume")], entries  # nothing re-queued


@workflow(retention=1e17)  # "forever": past what a Redis TTL can hold
def kept_forever() -> int:
    return 1


def test_a_retention_past_what_redis_can_hold_is_kept_at_most_retention_max(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PEXPIRE refused the TTL inside the terminal batch: the run ended with no TTL and no
    expiry entry, never to expire (fail_run's script likewise)."""
    from aiflow_nb import defaults
    from aiflow_nb.ops.local import ensure_local_worker
    from aiflow_nb.ops.recovery import fail_run
    from aiflow_nb.store import async_redis, run_in_new_loop

    ensure_local_worker(force=True)
    done = kept_forever.start()
    assert done.result(timeout=30) == 1
    broken = RunHandle(submit("steps", {"n": 1}, retention=1e17))
    sync_redis().hset(keys.run(broken.run_id), "status", "running")

    async def fail() -> bool:
        return await fail_run(async_redis(), broken.run_id, RuntimeError("executor bug"))

    assert run_in_new_loop(fail())
    r = sync_redis()
    longest = defaults.RETENTION_MAX * 1000
    for handle, workflow_name in ((done, "kept_forever"), (broken, "steps")):
        assert 0.99 * longest < r.pttl(keys.run(handle.run_id)) <= longest
        due = r.zscore(keys.expiry(0), f"{handle.run_id} {workflow_name}")
        assert due is not None and due <= time.time() + defaults.RETENTION_MAX


def test_two_submits_with_one_idempotency_key_never_both_create_a_run(
    monkeypatch: pytest.MonkeyPatch, namespace: str
) -> None:
    """The first submit claimed the key, then wrote its run; a second arriving between the
    two saw a key naming no record yet, took it over as if that run had expired, and
    created a second run (a client's retry of a slow POST does exactly this)."""
    from aiflow_nb.ops import submit as submit_module

    resolve = submit_module.resolve_version
    second: list[str] = []

    def resolve_then_a_retry_arrives(r: Any = None) -> str:
        if not second:  # in the first submit, after its key check: the retry runs now
            second.append("")
            second[0] = submit("nobody_serves_this", {"a": 1}, idempotency_key="retried")
        return resolve(r)

    monkeypatch.setattr(submit_module, "resolve_version", resolve_then_a_retry_arrives)
    first = submit("nobody_serves_this", {"a": 1}, idempotency_key="retried")
    assert second[0] == first
    assert sync_redis().zcard(keys.runs(0)) == 1
    assert sync_redis().get(keys.idempotency("retried")) == first.encode()
