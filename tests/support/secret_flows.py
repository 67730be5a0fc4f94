"""Workflows that handle secrets (tests/test_secrets.py; importable by worker processes
as ``--app support.secret_flows``).

``secret_flow`` takes ``token`` as a secret input and hands a password that only its
code knows to a component's ``password`` argument; its steps echo both literals into
another argument, outputs, a publish, a progress message, a log line, an error message
and its traceback. What each component really received is written to a side channel
(a Redis hash of SHA-256 digests), so a test can tell the worker got the real values.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiflow_nb import ComponentFailed, component, keys, progress, publish, workflow
from aiflow_nb.runtime.context import current_run
from aiflow_nb.store import sync_redis

from .trace import wait_gate

TOKEN = "sk-test-TOKEN-7f3a9c2e5b1d4406"
"""The workflow's secret input (``secret_args=["token"]``)."""
PASSWORD = "pw-component-only-48d1e0c7"
"""Never an input of the workflow: only a component's ``password`` argument."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seen_key(run_id: str) -> str:
    return f"{keys.runs(0)}:test-seen:{run_id}"


def seen(run_id: str) -> dict[str, str]:
    """What the components of ``run_id`` received: ``{"<step>.<arg>": sha256, ...}``."""
    raw = sync_redis().hgetall(seen_key(run_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def _note(step: str, **received: str) -> None:
    ctx = current_run()
    assert ctx is not None
    mapping = {f"{step}.{name}": digest(value) for name, value in received.items()}
    sync_redis().hset(seen_key(ctx.run_id), mapping=mapping)


@component
def login(api_key: str, password: str, note: str) -> str:
    """Credential-named arguments, and the token's literal in another one."""
    _note("login", api_key=api_key, password=password)
    return f"session for {api_key} / {password} ({note})"


@component
def echo(text: str) -> str:
    return text


@component
def explode(detail: str) -> None:
    raise ValueError(f"bad credentials: {detail}")


@component
def check(api_key: str) -> str:
    """After the gate: a resumed run's step still receives the real value."""
    _note("check", api_key=api_key)
    return "ok"


@workflow(secret_args=["token"])
def secret_flow(user: str, token: str, gate: str = "") -> dict[str, Any]:
    session = login(token, PASSWORD, note=f"{user} uses {token}")
    echoed = echo(f"my key is {token} and my password {PASSWORD}")
    publish("credentials", {"value": token, "password": PASSWORD})
    progress(1, 2, f"logged in with {token}")
    ctx = current_run()
    assert ctx is not None  # a log line: no public API writes one, the run's writer does
    ctx.writer.emit("log", data={"level": "info", "message": f"token={token} pw={PASSWORD}"})
    try:
        explode(f"{token} / {PASSWORD}")
    except ComponentFailed:
        pass
    if gate:
        wait_gate(gate)
    return {"session": session, "echo": echoed, "token": token, "check": check(token)}


@workflow
def secret_fail(api_key: str) -> None:
    """No secret_args: a credential-named input is a secret all the same."""
    raise RuntimeError(f"auth failed for {api_key}")


@component
def shout(text: str) -> str:
    return text


@workflow(secret_args=["token"])
def secret_big(token: str) -> str:
    """Values large enough to be cut or previewed in events, with the secret across
    each cut: a step's argument and result (previewed at 500 characters), error messages
    and tracebacks (cut), the run's output (previewed)."""
    out = shout("x" * 486 + token + "z" * 20_000)
    for k in (0, 15):  # two alignments: the cut falls inside one of the repeated tokens
        try:
            explode("y" * k + token * 200 + "w" * 5000)
        except ComponentFailed:
            pass
    return out
