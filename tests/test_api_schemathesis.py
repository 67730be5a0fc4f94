"""Property-based fuzzing of the live API from its own ``/openapi.json`` (schemathesis):
no 5xx for any input, and every response matches the documented status codes, content
types, headers and schemas. Positive and negative data for every operation, including
each workflow's own endpoints. Bounded to a few hundred requests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from support.api import KEY, serve

N_POSITIVE = 25
N_NEGATIVE = 10


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(namespace: str) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    auth = {"Authorization": f"Bearer {KEY}"}
    calls = 0
    # No worker: runs stay queued, so every generated input is answered at once.
    with serve(api_keys=(KEY,), run_wait=0.1, keepalive=0.1) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        assert any(op.path == "/workflows/api_add/run" for op in operations)
        for op in operations:
            names = {p.name for p in op.query}
            fixed = {"wait": 0} if "wait" in names else None
            modes = ((GenerationMode.POSITIVE, N_POSITIVE), (GenerationMode.NEGATIVE, N_NEGATIVE))
            for mode, n in modes:
                strategy = op.as_strategy(generation_mode=mode, query=fixed)

                @settings(
                    max_examples=n,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def probe(case: Any) -> None:
                    nonlocal calls
                    calls += 1
                    case.call_and_validate(
                        base_url=server.url, headers=auth, checks=checks, timeout=10
                    )

                try:
                    probe()
                except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                    assert mode == GenerationMode.NEGATIVE, op.path
    assert calls > 200
