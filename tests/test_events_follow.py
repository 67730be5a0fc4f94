"""The one follow primitive: its sans-IO core driven by hand (no Redis), then its drivers
and readers on the real Redis."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest

import aiflow_nb
from aiflow_nb import defaults, keys
from aiflow_nb.errors import RunFailed, RunNotFound, RunTimeout
from aiflow_nb.events.follow import STATUS_AND_TAIL, WAITER_PAGE, Command, Flow, Follow
from aiflow_nb.events.model import FIELD, make_payload
from aiflow_nb.events.status import RunStatus
from aiflow_nb.store import async_redis, sync_redis
from aiflow_nb.trace import follow as trace_follow
from aiflow_nb.trace.follow import Follower

from support.trace import failing, fan_out, open_gate, wait_for

RUN = "r1"
MORE = "..."
"""What ``play`` logs when the flow still wanted a reply after the script ran out."""

Entry = tuple[bytes, dict[bytes, bytes]]


def stream() -> str:
    return keys.run_events(RUN)  # in the test's namespace


def entry(entry_id: str, type: str) -> Entry:
    return entry_id.encode(), {FIELD: make_payload(type, RUN)}


def play(flow: Flow, replies: list[Any]) -> list[Any]:
    """Run ``flow``, answering its commands with ``replies`` in order; its steps: the
    commands, each batch as its ids, ``MORE`` if it went on past the last reply."""
    log: list[Any] = []
    answers: Iterator[Any] = iter(replies)
    reply: Any = None
    for _ in range(100):
        try:
            step = flow.send(reply)
        except StopIteration:
            return log
        if isinstance(step, Command):
            log.append(step)
            reply = next(answers, MORE)
            if reply is MORE:
                return [*log, MORE]
        else:
            log.append([event.id for event in step])
            reply = None
    raise AssertionError(f"flow still going after 100 steps: {log[-5:]}")


def methods(log: list[Any]) -> list[Any]:
    return [step.method if isinstance(step, Command) else step for step in log]


def hget() -> Command:
    return Command("hget", (keys.run(RUN), "status"))


def status_and_tail() -> Command:
    return Command("script", (STATUS_AND_TAIL, 2, keys.run(RUN), stream()))


def xrange(start: str) -> Command:
    return Command("xrange", (stream(),), {"min": start, "max": "+", "count": defaults.REPLAY_PAGE})


def xread(
    cursor: str, block: int = defaults.FOLLOW_BLOCK_MS, count: int = defaults.REPLAY_PAGE
) -> Command:
    return Command("xread", ({stream(): cursor},), {"block": block, "count": count})


# --- the core, by hand ---------------------------------------------------------------
def test_replay_then_follow_issues_the_commands_in_order_and_stops_at_the_end() -> None:
    page = [entry("1-0", "run.queued"), entry("2-0", "run.started")]
    live = [(stream().encode(), [entry("3-0", "log"), entry("4-0", "run.completed")])]
    log = play(Follow(RUN).flow(), [b"running", page, b"running", None, b"running", live])
    assert log == [
        hget(),
        xrange("-"),
        ["1-0", "2-0"],
        [],  # positioned at the tail
        hget(),  # caught up: has the run ended meanwhile?
        xread("2-0"),
        [],  # idle
        hget(),
        xread("2-0"),
        ["3-0", "4-0"],
    ]


def test_a_run_without_a_record_is_not_found() -> None:
    flow = Follow(RUN).flow()
    assert next(flow) == hget()
    with pytest.raises(RunNotFound):
        flow.send(None)


def test_replay_pages_after_the_given_id_and_follow_false_stops_after_it() -> None:
    full = [entry(f"{i}-0", "log") for i in range(2, 2 + defaults.REPLAY_PAGE)]
    log = play(Follow(RUN, after="1-0", follow=False).flow(), [b"running", full, []])
    assert methods(log)[:2] == ["hget", "xrange"] and log[1] == xrange("(1-0")
    assert log[3] == xrange(f"({defaults.REPLAY_PAGE + 1}-0")
    assert len(log) == 4


def test_a_terminal_event_in_a_live_batch_cuts_it() -> None:
    page = [entry("1-0", "run.started")]
    live = [(stream().encode(), [entry("2-0", "run.failed"), entry("3-0", "log")])]
    log = play(Follow(RUN).flow(), [b"running", page, b"running", live])
    assert log[-1] == ["2-0"]


def test_a_waiter_parses_only_run_events_and_each_reads_last_but_misses_no_end() -> None:
    spans = [entry(f"{i}-0", "span.completed") for i in range(2, 6)]
    live = [(stream().encode(), [*spans, entry("6-0", "run.completed"), entry("7-0", "log")])]
    idle = [(stream().encode(), spans)]
    log = play(
        Follow(RUN, replay=False, ends_only=True).flow(),
        [[b"running", b"1-0"], idle, live],
    )
    # no span parsed; the end still cuts
    assert log[-3:] == [["5-0"], xread("5-0", count=WAITER_PAGE), ["6-0"]]
    odd = (b"2-0", {FIELD: b'{"ts":1,"type":"run.failed"}'})  # not written by make_payload
    not_made_here = [(stream().encode(), [odd, entry("3-0", "log")])]
    log = play(
        Follow(RUN, replay=False, ends_only=True).flow(),
        [[b"running", b"1-0"], not_made_here],
    )
    assert log[-1] == ["2-0"]  # a document in another key order is parsed, to be sure


def test_a_waiter_behind_a_long_run_skips_to_its_tail_with_the_status() -> None:
    full = [(stream().encode(), [entry(f"{i}-0", "span.completed") for i in range(2, 18)])]
    spec = Follow(RUN, replay=False, ends_only=True)
    log = play(spec.flow(), [[b"running", b"1-0"], full, [b"running", b"90-0"], None])
    assert log[2:] == [
        xread("1-0", count=WAITER_PAGE),
        ["17-0"],
        status_and_tail(),  # a full read: more is there; the rest is skipped
        xread("90-0", count=WAITER_PAGE),
        [],
        hget(),
        MORE,
    ]
    log = play(spec.flow(), [[b"running", b"1-0"], full, [b"completed", b"99-0"]])
    assert log[-1] == status_and_tail()  # ended meanwhile: the wait is over


def test_replay_passes_through_a_failure_that_a_resume_followed() -> None:
    page = [entry("1-0", "run.failed"), entry("2-0", "run.resumed")]
    log = play(Follow(RUN).flow(), [b"queued", page, b"running", None])
    assert methods(log) == ["hget", "xrange", ["1-0", "2-0"], [], "hget", "xread", [], "hget", MORE]


def test_from_the_tail_an_ended_run_costs_one_command() -> None:
    log = play(Follow(RUN, replay=False).flow(), [[b"completed", b"9-0"]])
    assert log == [status_and_tail()]


def test_from_the_tail_a_run_without_a_record_is_not_found() -> None:
    flow = Follow(RUN, replay=False).flow()
    assert next(flow) == status_and_tail()
    with pytest.raises(RunNotFound):
        flow.send([None, None])


def test_from_the_tail_an_earlier_attempts_end_does_not_stop_a_resumed_run() -> None:
    """Regression: wait() right after resume() returned at once on the old run.failed."""
    tail = [entry("9-0", "run.failed")]
    new = [(stream().encode(), [entry("10-0", "run.resumed"), entry("11-0", "run.completed")])]
    log = play(Follow(RUN, replay=False).flow(), [[b"queued", tail[0][0]], new])
    assert log == [status_and_tail(), [], xread("9-0"), ["10-0", "11-0"]]


def test_from_a_known_tail_the_first_command_is_the_blocking_read() -> None:
    """A run its handle just submitted: XREAD from its run.queued id, no status first."""
    live = [(stream().encode(), [entry("4-0", "run.started"), entry("5-0", "run.completed")])]
    log = play(Follow(RUN, replay=False, tail="3-0", ends_only=True).flow(), [live])
    assert log == [[], xread("3-0", count=WAITER_PAGE), ["4-0", "5-0"]]


def test_from_a_known_tail_past_the_deadline_the_status_decides() -> None:
    """Past the deadline before any read: the status (not read yet) says whether the run
    ended (the rest is read, no timeout) or is still going (``RunTimeout`` naming it)."""
    ended = play(Follow(RUN, replay=False, tail="3-0", timeout=0).flow(), [b"completed", []])
    assert ended == [[], hget(), xrange("(3-0")]
    flow = Follow(RUN, replay=False, tail="3-0", timeout=0).flow()
    assert next(flow) == [] and flow.send(None) == hget()
    with pytest.raises(RunTimeout, match="still running"):
        flow.send(b"running")


def test_idle_and_the_status_says_ended_reads_the_rest_once_and_stops() -> None:
    """A log line may follow run.completed: the status, not the last event, ends it."""
    rest = [entry("6-0", "run.completed"), entry("7-0", "log")]
    log = play(Follow(RUN, replay=False).flow(), [[b"running", b"5-0"], None, b"completed", rest])
    assert log[2:] == [xread("5-0"), [], hget(), xrange("(5-0"), ["6-0", "7-0"]]


def test_a_failed_run_followed_past_failure_blocks_on_every_read() -> None:
    """Regression: the dashboard follower re-read a failed run in a loop without blocking."""
    spec = Follow(RUN, stop=frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED}))
    page = [entry("1-0", "run.failed")]
    log = play(spec.flow(), [b"failed", page, b"failed", None, b"failed", None])
    reads = ["hget", "xread", []] * 2
    assert methods(log) == ["hget", "xrange", ["1-0"], [], *reads, "hget", MORE]
    assert [step for step in log if isinstance(step, Command) and step.method == "xread"] == [
        xread("1-0")
    ] * 2


def test_an_empty_stop_follows_past_the_end_and_never_reads_the_status() -> None:
    live = [(stream().encode(), [entry("2-0", "run.resumed")])]
    log = play(Follow(RUN, replay=False, stop=frozenset()).flow(), [[b"x", b"1-0"], None, live])
    assert methods(log) == ["script", [], "xread", [], "xread", ["2-0"], "xread", MORE]


def test_timeout_shrinks_the_last_block_then_raises() -> None:
    now = [100.0]
    spec = Follow(RUN, replay=False, timeout=1.5, clock=lambda: now[0])
    flow = spec.flow()
    assert next(flow) == status_and_tail()
    assert flow.send([b"queued", None]) == []  # no stream yet
    assert flow.send(None) == xread("0-0", 1000)
    now[0] += 1.2
    assert flow.send(None) == []
    assert flow.send(None) == hget()
    assert flow.send(b"queued") == xread("0-0", 300)
    now[0] += 0.3
    flow.send(None)
    flow.send(None)
    with pytest.raises(RunTimeout, match="still queued after 1.5 s"):
        flow.send(b"queued")


def test_block_must_be_positive() -> None:
    with pytest.raises(ValueError, match="block_ms"):
        Follow(RUN, block_ms=0)


# --- on Redis --------------------------------------------------------------------------
def test_sync_and_async_drivers_give_the_same_batches() -> None:
    handle = fan_out.start(n=3)
    handle.result(timeout=10)

    async def collect() -> list[list[str]]:
        client = async_redis()
        try:
            return [[e.id for e in b] async for b in Follow(handle.run_id).abatches(client)]
        finally:
            await client.aclose()

    sync = [[e.id for e in b] for b in Follow(handle.run_id).batches(sync_redis())]
    assert sync == asyncio.run(collect()) and sync[0][0] and len(sync) == 1


def test_waiting_on_an_ended_run_with_a_trailing_log_returns_at_once() -> None:
    handle = fan_out.start(n=1)
    handle.result(timeout=10)
    late = make_payload("log", handle.run_id, data={"message": "late"})
    sync_redis().xadd(keys.run_events(handle.run_id), {FIELD: late})
    t0 = time.monotonic()
    assert handle.wait(timeout=5) == "completed"
    assert time.monotonic() - t0 < 0.5


def test_from_the_tail_a_follow_sees_only_what_comes_next() -> None:
    gate = f"ft{time.time_ns()}"
    handle = fan_out.start(n=1, gate=gate)
    wait_for(lambda: handle.status == "running", what="running")
    spec = Follow(handle.run_id, replay=False, block_ms=100)
    types: list[str] = []
    for batch in spec.batches():
        if not types and not batch:
            open_gate(gate)
        types += [event.type for event in batch]
    assert "run.started" not in types and types[-1] == "run.completed"


def test_trace_follower_does_not_spin_on_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: after run.failed the Follower re-ran the reader in a loop that returned
    at once (thousands of Redis calls a second); now each read blocks."""
    handle = failing.start(x=1)
    with pytest.raises(RunFailed):
        handle.result(timeout=10)
    calls: collections.Counter[str] = collections.Counter()
    monkeypatch.setattr(trace_follow, "async_redis", lambda: _Counting(async_redis(), calls))
    follower = Follower(handle.run_id, block_ms=200).start()
    try:
        wait_for(lambda: follower.pending(), what="replayed events")
        time.sleep(1.0)
        assert follower.alive, "a failed run may be resumed: keep listening"
        assert calls["xread"] <= 8 and sum(calls.values()) <= 25, calls
    finally:
        follower.stop()
    assert follower.drain()[-1].type == "run.failed"
    assert aiflow_nb.attach(handle.run_id).status == "failed"


class _Counting:
    """A real async client that counts the calls made through it."""

    def __init__(self, client: Any, calls: collections.Counter[str]) -> None:
        self._client, self._calls = client, calls

    def __getattr__(self, name: str) -> Any:
        self._calls[name] += 1
        return getattr(self._client, name)
