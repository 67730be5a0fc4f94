"""Redaction of secrets in API documents (pure functions, no server)."""

from __future__ import annotations

import pytest

from aiflow_nb.api.redact import MASK, Redactor, environment_secrets, is_sensitive_key


def test_credential_like_keys_are_masked_anywhere() -> None:
    doc = {
        "data": {
            "headers": {"Authorization": "Bearer x", "X-Api-Key": "k"},
            "items": [{"password": "p", "max_tokens": 5}],
            "openai_api_key": "sk-1",
            "client_secret": None,
        }
    }
    out = Redactor().apply(doc)
    assert out["data"]["headers"] == {"Authorization": MASK, "X-Api-Key": MASK}
    assert out["data"]["items"] == [{"password": MASK, "max_tokens": 5}]
    assert out["data"]["openai_api_key"] == MASK and out["data"]["client_secret"] is None
    assert doc["data"]["items"][0]["password"] == "p"  # the input is not changed
    assert not is_sensitive_key("gen_ai.usage.input_tokens")


def test_secret_inputs_are_masked_by_name_and_by_value() -> None:
    red = Redactor().for_inputs(["token"], {"token": "hunter2-long", "user": "bob"})
    out = red.apply(
        {
            "inputs": {"token": "hunter2-long", "user": "bob"},
            "error": {"message": "auth failed for hunter2-long"},
        }
    )
    assert out == {
        "inputs": {"token": MASK, "user": "bob"},
        "error": {"message": f"auth failed for {MASK}"},
    }


def test_environment_provider_keys_are_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-live-123456")
    monkeypatch.setenv("AIFLOW_SECRET", "s3cret-value")
    literals = environment_secrets(["api-key-1", "no"])
    assert {"ak-live-123456", "s3cret-value", "api-key-1"} <= set(literals)
    assert "no" not in literals  # too short to mask as text
    assert Redactor(literals=literals).apply("x ak-live-123456 y") == f"x {MASK} y"
