"""The soak tests' parts: 200 runs of the chaos ``steps`` workflow (10 steps) submitted to
3 ``aiflow worker`` processes while faults are done to them (``Chaos``), every 4th run's
stream followed live (``Followers``), and the invariants every run must hold once all
have ended (``check_run``)."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiflow_nb import keys
from aiflow_nb.access.handle import RunHandle
from aiflow_nb.events.model import Event
from aiflow_nb.events.reader import aread_events
from aiflow_nb.examples.chaos import JOURNALED_TWICE, side_effects
from aiflow_nb.ops.presence import live_workers
from aiflow_nb.ops.submit import resolve_version, submit
from aiflow_nb.store import sync_redis

from .helpers import wait_for
from .ops import WorkerProcess, fleet

RUNS, STEPS, DELAY = 200, 10, 0.05
FOLLOW_EVERY = 4
"""Every 4th run is followed live by a reader (one blocking connection each)."""
SOAK_ENV = {"AIFLOW_HEARTBEAT_INTERVAL": "0.25", "AIFLOW_HEARTBEAT_TTL": "2.0"}
"""A TTL with room for a worker starved of CPU on a 2-core machine under chaos."""
WORKER_ARGS = ("--max-restarts", "50", "--concurrency", "100")
WORKERS = 3


class Followers(threading.Thread):
    """Follows runs' streams live (one asyncio task each), keeping the event ids."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, list[str]] = {}
        self.loop = asyncio.new_event_loop()
        self.tasks: list[asyncio.Future[None]] = []

    def run(self) -> None:
        self.loop.run_forever()

    def follow(self, run_id: str) -> None:
        async def read() -> None:
            ids = self.seen.setdefault(run_id, [])
            async for event in aread_events(run_id, block_ms=500):
                ids.append(event.id)

        self.tasks.append(asyncio.run_coroutine_threadsafe(read(), self.loop))  # type: ignore[arg-type]

    def finish(self, timeout: float) -> None:
        for task in self.tasks:
            task.result(timeout)  # type: ignore[call-arg]
        self.loop.call_soon_threadsafe(self.loop.stop)


@dataclass
class Chaos:
    """The soak's workers and the faults done to them. ``kill()`` SIGKILLs one and starts
    another in its place; ``stop(seconds)`` SIGSTOPs one, and ``wake()`` SIGCONTs it once
    ``seconds`` have passed. A victim is a worker with runs in hand when there is one."""

    start: Callable[..., WorkerProcess]
    rng: random.Random
    spacing: tuple[float, float] = (1.5, 3.0)
    """Seconds between two faults (drawn uniformly)."""
    workers: list[WorkerProcess] = field(default_factory=list)
    stopped: dict[int, tuple[WorkerProcess, float]] = field(default_factory=dict)
    """pid -> (worker, when its SIGCONT is due)."""
    held: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Runs a worker had in hand when it was stopped -> (that worker, their attempt then)."""
    kills: int = 0
    stops: int = 0
    next_fault: float = 0.0

    def __post_init__(self) -> None:
        self.workers = [self._new() for _ in range(WORKERS)]
        for worker in self.workers:
            worker.ready()
        self.next_fault = time.monotonic() + self.rng.uniform(1.0, 2.0)

    def _new(self) -> WorkerProcess:
        return self.start(*WORKER_ARGS, env=SOAK_ENV)

    def due(self) -> bool:
        """True when the next fault is due (the one after it is then scheduled)."""
        now = time.monotonic()
        if now < self.next_fault:
            return False
        self.next_fault = now + self.rng.uniform(*self.spacing)
        return True

    def _victim(self, busiest: bool = False) -> tuple[WorkerProcess, str]:
        """A running (not stopped) worker with runs in hand when there is one (``busiest``:
        the one with most), and its id (``""`` before its first heartbeat)."""
        running = [w for w in self.workers if w.pid not in self.stopped]
        beats = {int(d["pid"]): d for d in live_workers()}
        busy = [w for w in running if int(beats.get(w.pid, {}).get("in_hand", 0))]
        if busiest and busy:
            victim = max(busy, key=lambda w: int(beats[w.pid]["in_hand"]))
        else:
            victim = self.rng.choice(busy or running)
        return victim, beats.get(victim.pid, {}).get("id", "")

    def kill(self) -> None:
        victim, _ = self._victim()
        victim.kill()
        self.kills += 1
        self.workers.remove(victim)
        self.workers.append(self._new())

    def stop(self, seconds: float) -> None:
        victim, worker_id = self._victim(busiest=True)
        victim.signal(signal.SIGSTOP)
        self.stops += 1
        self.stopped[victim.pid] = (victim, time.monotonic() + seconds)
        for run_id, attempt in _running_on(worker_id).items():  # frozen now: what it held
            self.held.setdefault(run_id, (worker_id, attempt))

    def wake(self, everyone: bool = False) -> None:
        """SIGCONT the stopped workers whose time is up (``everyone``: all of them)."""
        now = time.monotonic()
        for pid, (worker, until) in list(self.stopped.items()):
            if everyone or now >= until:
                worker.signal(signal.SIGCONT)
                del self.stopped[pid]

    def taken_over(self) -> int:
        """How many runs a stopped worker held were finished by a later attempt elsewhere."""
        ended = {run_id: RunHandle(run_id).record() for run_id in self.held}
        return sum(
            ended[run_id]["attempt"] > attempt and ended[run_id]["worker"] != worker
            for run_id, (worker, attempt) in self.held.items()
        )


def _running_on(worker_id: str) -> dict[str, int]:
    """Runs whose record says they run on ``worker_id`` -> their attempt."""
    r = sync_redis()
    run_ids = [i.decode() for i in r.smembers(keys.running(0))]
    pipe = r.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.hmget(keys.run(run_id), "status", "worker", "attempt")
    return {
        run_id: int(attempt or 0)
        for run_id, (status, worker, attempt) in zip(run_ids, pipe.execute(), strict=True)
        if status == b"running" and worker == worker_id.encode()
    }


@dataclass
class Soak:
    """What one soak did: its faults and how many interrupted attempts were resumed."""

    chaos: Chaos
    handles: list[RunHandle]
    resumed: int
    seconds: float


def soak(
    tmp_path: Path,
    seed: int,
    fault: Callable[[Chaos, int], None],
    enough: Callable[[Chaos], bool],
    submit_every: float = 0.05,
    budget: float = 150.0,
) -> Soak:
    """Submit ``RUNS`` runs, one each ``submit_every`` seconds, calling ``fault(chaos,
    submitted)`` between two submissions (and after the last until ``enough(chaos)``);
    then wake the stopped workers, wait for every run and check each (``check_run``),
    all within ``budget`` seconds."""
    followers = Followers()
    followers.start()
    t0 = time.monotonic()
    with fleet(tmp_path) as start:
        chaos = Chaos(start, random.Random(seed))
        handles: list[RunHandle] = []
        while len(handles) < RUNS or not enough(chaos):
            if len(handles) < RUNS:
                handle = RunHandle(submit("steps", {"n": STEPS, "delay": DELAY}))
                if len(handles) % FOLLOW_EVERY == 0:
                    followers.follow(handle.run_id)
                handles.append(handle)
            fault(chaos, len(handles))
            time.sleep(submit_every)
            assert time.monotonic() - t0 < budget * 0.7, "chaos loop overran"
        chaos.wake(everyone=True)
        for handle in handles:
            handle.wait(timeout=max(1.0, budget - 10 - (time.monotonic() - t0)))
        followers.finish(timeout=10)
        resumed = sum(check_run(h, followers.seen.get(h.run_id)) for h in handles)
        assert len(followers.seen) == RUNS // FOLLOW_EVERY
        _nothing_left_behind()
    return Soak(chaos, handles, resumed, time.monotonic() - t0)


def _nothing_left_behind() -> None:
    """Every queue entry is deleted and no run is marked running (a dead worker's entries
    of runs that ended go once the monitor has seen it die)."""
    r = sync_redis()
    queues = [q.decode() for q in r.smembers(keys.queues(resolve_version(), 0))]

    def clean() -> bool:
        return not r.smembers(keys.running(0)) and all(r.xlen(q) == 0 for q in queues)

    wait_for(clean, 20, lambda: f"queues {[r.xlen(q) for q in queues]} to empty")


def _key_of(events: list[Event]) -> dict[str, str]:
    """span id -> step key (``steps``, ``steps/step#3``)."""
    return {
        e.span_id: e.data["key"]
        for e in events
        if e.span_id and e.type in ("span.started", "span.replayed")
    }


def _script(attempt: int, journaled: int) -> list[tuple[str, str]]:
    """Every event an attempt of ``steps`` writes when it resumes from ``journaled`` steps
    and runs to its end, as (type, step key)."""
    steps = [f"steps/step#{k}" for k in range(STEPS)]
    return [
        ("run.started" if attempt == 1 else "run.resumed", ""),
        ("span.started", "steps"),
        *(("span.replayed", key) for key in steps[:journaled]),
        *((kind, key) for key in steps[journaled:] for kind in ("span.started", "span.completed")),
        ("span.completed", "steps"),
        ("run.completed", ""),
    ]


def _is_note(event: Event) -> bool:
    """A recovery's ``log`` note (a worker died, or stalled, holding the run)."""
    return event.type == "log" and bool(event.data.get("recovered"))


def _attempts(events: list[Event]) -> list[list[Event]]:
    """The stream after ``run.queued``, cut at each attempt's ``run.started``/``run.resumed``
    (only recovery notes come before the first: a worker died before the start landed)."""
    assert events[0].type == "run.queued", events[0]
    attempts: list[list[Event]] = []
    for event in events[1:]:
        if event.type in ("run.started", "run.resumed"):
            attempts.append([])
        if attempts:
            attempts[-1].append(event)
        else:
            assert _is_note(event), f"{event.type} before the first attempt started"
    return attempts


def _story(run_id: str, n: int, what: str, events: list[Event]) -> str:
    """A failed check of attempt ``n``, with the run's whole stream, one event a line."""
    key_of = _key_of(events)
    lines = [f"{run_id}: attempt {n}: {what}; its stream:"]
    for e in events:
        data = {
            k: v for k, v in e.data.items() if k in ("worker", "attempt", "journaled", "message")
        }
        lines.append(f"  {e.id} {e.type} {key_of.get(e.span_id or '', '')} {data or ''}")
    return "\n".join(lines)


def _check_attempts(run_id: str, events: list[Event]) -> int:
    """Each attempt's events are a prefix of what it would write (the last attempt's, all
    of it), from the journal it found, which is exactly what the stream shows completed
    before it: no event of an earlier attempt after a later one started, no step
    completed twice, none lost. A recovery's ``log`` note ends each attempt but the
    last. Returns the number of attempts."""
    key_of = _key_of(events)
    attempts = _attempts(events)
    done = 0
    for n, attempt in enumerate(attempts, 1):
        start = attempt[0]
        assert start.data["attempt"] == n, _story(run_id, n, "numbered wrong", events)
        assert start.data["journaled"] == done, _story(run_id, n, "another journal", events)
        notes = [e for e in attempt if _is_note(e)]
        body = attempt[: len(attempt) - len(notes)]
        assert body + notes == attempt, _story(run_id, n, "wrote after its recovery", events)
        shape = [(e.type, key_of.get(e.span_id or "", "")) for e in body]
        script = _script(n, done)
        if n == len(attempts):
            assert shape == script and not notes, _story(run_id, n, "not all written", events)
        else:
            assert shape == script[: len(shape)], _story(run_id, n, "not a prefix", events)
            assert notes, _story(run_id, n, "ended with no recovery", events)
        done += sum(kind == "span.completed" and key != "steps" for kind, key in shape)
    assert done == STEPS, f"{run_id}: {done} steps completed"
    return len(attempts)


def _increasing(ids: list[str]) -> bool:
    parts = [tuple(int(p) for p in i.split("-")) for i in ids]
    return all(a < b for a, b in zip(parts, parts[1:], strict=False))


def check_run(handle: RunHandle, followed: list[str] | None) -> int:
    """Assert one run's invariants; return how many interrupted attempts it resumed."""
    rec = handle.record()
    events = list(handle.events(follow=False))
    ids = [e.id for e in events]
    assert _increasing(ids), f"{handle.run_id}: stream ids out of order"
    assert followed is None or followed == ids, f"{handle.run_id}: a live reader saw a gap"
    terminal = [e for e in events if e.terminal]
    assert [e.type for e in terminal] == ["run.completed"], [e.type for e in events]
    assert rec["status"] == "completed", rec
    assert rec["output"] == terminal[0].data["output"] == list(range(STEPS)), rec
    attempts = _check_attempts(handle.run_id, events)
    assert rec["attempt"] == attempts, (rec, attempts)
    effects = side_effects(handle.run_id)
    assert JOURNALED_TWICE not in effects, f"{handle.run_id}: a journaled step ran again"
    # unjournaled steps in flight at a fault may run again (at-least-once), once per fault:
    # each interrupted attempt (also one killed before its start landed) was recovered
    executions = 1 + sum(_is_note(e) for e in events)
    assert len(effects) == STEPS and max(effects.values()) <= executions, (effects, executions)
    return attempts - 1
