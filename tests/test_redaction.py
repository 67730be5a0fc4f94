"""Redaction of secrets (pure functions, no server)."""

from __future__ import annotations

import pytest

from aiflow_nb.redaction import (
    MASK,
    Redactor,
    environment_secrets,
    is_sensitive_key,
    may_name_credentials,
    secret_literals,
    shown_url,
)
from aiflow_nb.serialization import dumps


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


def test_the_environments_redactor_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``from_environment`` keeps what it made while the environment is unchanged (every
    submit and run asks), and sees a secret set or unset since."""
    monkeypatch.delenv("LATER_API_KEY", raising=False)
    before = Redactor.from_environment()
    assert Redactor.from_environment() is before
    monkeypatch.setenv("LATER_API_KEY", "sk-later-98765")
    now = Redactor.from_environment()
    assert "sk-later-98765" in now.literals and now.apply("sk-later-98765") == MASK
    monkeypatch.delenv("LATER_API_KEY")
    assert "sk-later-98765" not in Redactor.from_environment().literals


def test_credential_names_include_tokens_and_keys_but_not_token_counts() -> None:
    for name in ("token", "github_token", "DB_PASSWORD", "signing_key", "X-Api-Key", "apikey"):
        assert is_sensitive_key(name), name
    for name in ("key", "keys", "max_tokens", "gen_ai.usage.output_tokens", "monkey", "user"):
        assert not is_sensitive_key(name), name


def test_secret_literals_are_the_text_under_secret_names_at_any_depth() -> None:
    inputs = {
        "conn": {"host": "db.local", "port": 5432},
        "config": {"nested": [{"api_key": "k-nested-123"}], "retries": 3},
        "pin": 123456,
        "user": "bob",
        "password": "abc",  # too short to mask as text (masked by key only)
    }
    assert sorted(secret_literals(["conn", "pin"], inputs)) == ["123456", "5432", "db.local"] + [
        "k-nested-123"
    ]


DOCS = [
    {"data": {"text": "plain words", "key": "wf/step#0", "gen_ai.usage.input_tokens": 3}},
    {"data": {"text": 'quote " and \\ and \n and é and sk-live-abcdef'}},
    {"data": {"sk-live-abcdef": 1}},
    {"data": {"nested": [{"Authorization": "Bearer x"}]}},
    {"data": {"conn": "anything"}},
    {"data": {"items": [{"DB-Password": None}, {"x": "sk-live-abcde"}]}},
    {"name": 'with "quotes" sk-live-abcdef\t', "data": {}},
]


@pytest.mark.parametrize("doc", DOCS)
def test_may_hold_is_false_only_when_applying_would_change_nothing(doc: dict) -> None:
    red = Redactor(names=["conn"], literals=["sk-live-abcdef", 'q"uote'])
    payload = dumps(doc)
    if red.apply(doc) != doc:
        assert red.may_hold(payload)
    assert not red.may_hold(dumps(DOCS[0]))


def test_may_name_credentials_is_a_pre_check_on_json_bytes() -> None:
    assert may_name_credentials(dumps({"a": [{"DB-Password": 1}]}))
    assert may_name_credentials(dumps({"x": {"github_token": "t"}}))
    assert not may_name_credentials(dumps({"key": "wf/a#0", "max_tokens": 3, "text": "key"}))


def test_split_stream_holds_back_only_an_end_a_secret_may_begin_with() -> None:
    red = Redactor(literals=["hunter2-long", "huh?-other"])
    assert red.split_stream("pw: hunt") == ("pw: ", "hunt")
    assert red.split_stream("hunter2-long!") == ("***!", "")
    assert red.split_stream("hu") == ("", "hu")  # both secrets may begin here
    assert red.split_stream("a hub") == ("a hub", "")  # neither does
    assert red.split_stream("x hunter2-lon") == ("x ", "hunter2-lon")
    assert Redactor().split_stream("anything") == ("anything", "")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@localhost:6379/0", "redis://:***@localhost:6379/0"),
        (
            "rediss+cluster://app:s%40cret@cfg.example.com:6379",
            "rediss+cluster://app:***@cfg.example.com:6379",
        ),
        ("unix://:pw@/tmp/r.sock?db=0", "unix://:***@/tmp/r.sock?db=0"),
        ("redis://localhost?password=abc&db=1", "redis://localhost?password=***&db=1"),
        (
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        ),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
        ("redis://app@host:6379", "redis://app@host:6379"),  # a user name is no secret
        ("redis://app:pw@[::1", "redis://***@[::1"),  # unparseable: all before its @ masked
        ("redis://[::1", "redis://[::1"),
    ],
)
def test_shown_url_masks_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert shown_url(url) == shown
