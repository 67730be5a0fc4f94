"""The API-side write of a rerun: a new run of a finished run's workflow, seeded with its
journal. Never executes anything (``aiflow_nb.rerun``, REST and the CLI call it).

The new run is an ordinary submit (one MULTI) of the same workflow with the source's
inputs updated by ``inputs``, with the workflow's current code: the latest registered
bundle of that name when the source ran notebook code, else this process's registered
definition when it has one, else the workflow the workers serve by name. The
source's journal is read (before the MULTI) and copied into the new run's seed hash
(``keys.run_seed``) without its ``@wait/`` entries (a rerun's waits ask again), so the
rerun does not depend on the source outliving it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import redis

from .. import keys
from ..authoring import registry
from ..authoring.interface import signature_of
from ..errors import AiflowError, InvalidInputs, RunNotFound, RunStateError, WorkflowNotFound
from ..events.reader import read_events
from ..events.status import TERMINAL
from ..runtime.waits import JOURNAL_PREFIX
from ..serialization import loads
from ..store import sync_redis
from ..store.replies import RawHash
from .code import notebook_workflows, read_interface
from .submit import Seed, submit

if TYPE_CHECKING:
    from ..authoring.workflow import Workflow

__all__ = ["fork", "step_names"]


def fork(
    run_id: str,
    inputs: dict[str, Any] | None = None,
    steps: Iterable[str] | None = None,
    client: redis.Redis | None = None,
) -> str:
    """Queue a rerun of the finished run ``run_id``; return the new run's id.

    ``inputs`` update the source's inputs; ``steps`` (component names or step keys)
    execute even when the source's journal holds them. ``RunNotFound`` for an unknown
    run, ``RunStateError`` for one not finished (completed, failed or cancelled),
    ``InvalidInputs`` for a step the source run never had (``fields``: ``steps``) or
    for inputs the workflow (when this process has it) does not take.
    """
    r = client or sync_redis()
    rec = {k.decode(): v.decode() for k, v in cast(RawHash, r.hgetall(keys.run(run_id))).items()}
    if not rec:
        raise RunNotFound(run_id)
    status = rec.get("status", "")
    if status not in TERMINAL:
        raise RunStateError(
            f"run {run_id} is {status}; a rerun needs a finished run (completed, failed or "
            "cancelled): wait for it, or cancel it first"
        )
    name = rec["workflow"]
    if inputs is not None and not isinstance(inputs, dict):
        raise InvalidInputs(f"rerun inputs must be a JSON object, got {type(inputs).__name__}")
    secret = loads(rec["secret_args"]) if rec.get("secret_args") else []
    merged = {**loads(rec.get("inputs") or "{}"), **(inputs or {})}
    if rec.get("secrets_dropped") and not set(secret) <= set(inputs or {}):
        raise RunStateError(
            f"run {run_id} had secret inputs {sorted(secret)}, which are dropped when a run "
            "ends: give them again in inputs to rerun it"
        )
    wf = _registered(name)
    code: str | None
    if rec.get("code"):  # notebook code: its latest bundle (the source's if none newer);
        # the registry's object may be a stale one: a kernel's redefinition of a cell
        # re-registers the bundle, not the object an earlier exec of the cell registered
        code = notebook_workflows(r).get(name, rec["code"])
    elif wf is not None:
        code = wf.code_bundle
    else:
        code = None
    merged = _checked_inputs(name, merged, wf, code, r)
    journal = {
        k: v
        for k, v in cast(RawHash, r.hgetall(keys.run_journal(run_id))).items()
        if not k.startswith(JOURNAL_PREFIX.encode())
    }
    chosen = None if steps is None else _checked_steps(run_id, r, journal, steps)
    retention = float(rec["retention"]) if rec.get("retention") else None
    return submit(
        name,
        merged,
        secret_args=secret,
        code=code,
        retention=retention,
        client=r,
        seed=Seed(run_id, chosen, journal),
    )


def _registered(name: str) -> Workflow[Any, Any] | None:
    try:
        return registry.get(name)
    except WorkflowNotFound:
        return None


def _checked_inputs(
    name: str,
    inputs: dict[str, Any],
    wf: Workflow[Any, Any] | None,
    code: str | None,
    r: redis.Redis,
) -> dict[str, Any]:
    """``inputs`` checked against the workflow's signature: the interface its code
    bundle was registered with, else this process's definition (as is, when neither is
    known here: the worker's binding refuses them)."""
    if not code:
        return wf.bind_inputs(inputs) if wf is not None else inputs
    try:
        signature = signature_of(read_interface(code, r))
    except (AiflowError, KeyError, TypeError, ValueError):
        return inputs  # an older bundle without an interface: the worker checks
    try:
        signature.bind(**inputs)
    except TypeError as exc:
        raise InvalidInputs(f"inputs for workflow {name!r}: {exc}") from None
    return inputs


def step_names(run_id: str, client: redis.Redis, journal: dict[bytes, bytes]) -> set[str]:
    """The step keys and component names of the run ``run_id``: its journal's and its
    spans' (a failed step is in its events only)."""
    found: set[str] = set()
    for raw in journal:
        found.add(raw.decode())
    for e in read_events(run_id, follow=False, client=client):
        if e.type == "span.started" and e.parent_id is not None:
            if e.name:
                found.add(e.name)
            if isinstance(e.data.get("key"), str):
                found.add(e.data["key"])
    for key in list(found):
        if "#" in key:  # a step key names its component: ``wf/b#0`` -> b
            found.add(key.rsplit("/", 1)[-1].rsplit("#", 1)[0])
    return found


def _checked_steps(
    run_id: str, r: redis.Redis, journal: dict[bytes, bytes], steps: Iterable[str]
) -> list[str]:
    if isinstance(steps, str):
        steps = [steps]
    chosen = [str(s) for s in steps]
    known = step_names(run_id, r, journal)
    unknown = [s for s in chosen if s not in known]
    if unknown:
        names = sorted(k for k in known if "/" not in k)
        example = next(iter(sorted(k for k in known if "/" in k)), "wf/step#0")
        message = (
            f"run {run_id} has no step {', '.join(map(repr, unknown))}; its components: "
            f"{', '.join(names) or '(none)'} (or give a step key such as {example!r})"
        )
        raise InvalidInputs(message, [{"field": "steps", "message": message}])
    return chosen
