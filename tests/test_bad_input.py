"""Bad input gets a clear error at the call site and nothing is written."""

from __future__ import annotations

import pytest
import redis

import aiflow_nb as af
from aiflow_nb import keys, workflow
from aiflow_nb.errors import InvalidInputs, RedisUnavailable, RunNotFound, SerializationError

from support.helpers import namespace_keys


@workflow
def echo(value: object) -> object:
    return value


def test_unserialisable_input_fails_at_the_call_site_and_writes_nothing(redis_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SerializationError, match="inputs of workflow 'echo'"):
        echo.start(value=object())
    assert redis_client.zcard(keys.runs(0)) == 0
    assert not namespace_keys(redis_client)


def test_unserialisable_output_fails_the_run_with_a_clear_error() -> None:
    @af.component
    def makes_a_set() -> set[int]:
        return {1, 2}

    @workflow
    def wf_set() -> object:
        return makes_a_set()

    with pytest.raises(af.RunFailed, match="output of component 'makes_a_set' is not JSON"):
        wf_set.run()


def test_inputs_that_do_not_fit_the_signature() -> None:
    with pytest.raises(InvalidInputs, match="workflow 'echo'"):
        echo.start(valu=1)
    with pytest.raises(InvalidInputs):
        echo.start()


def test_unknown_run_id_raises_run_not_found() -> None:
    with pytest.raises(RunNotFound):
        af.attach("no-such-run")
    with pytest.raises(RunNotFound):
        list(af.RunHandle("no-such-run").events())
    with pytest.raises(RunNotFound):
        af.resume("no-such-run")


def test_resuming_a_completed_run_is_refused() -> None:
    handle = echo.start(value=1)
    assert handle.result(timeout=10) == 1
    with pytest.raises(af.RunStateError, match="completed"):
        af.resume(handle.run_id)


def test_redis_down_names_the_url_and_what_to_do(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"unix://{tmp_path}/nothing-here.sock"
    af.configure(redis_url=url)
    try:
        with pytest.raises(RedisUnavailable) as info:
            echo.start(value=1)
        assert url in str(info.value) and "REDIS_URL" in str(info.value)
        assert isinstance(info.value.__cause__, redis.ConnectionError | OSError)
    finally:
        af.configure()


def test_redis_down_never_shows_the_urls_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from aiflow_nb.notebook.status import kernel_status

    secret = "hunter2-not-for-notebooks"
    url = f"unix://:{secret}@{tmp_path}/nothing-here.sock"
    af.configure(redis_url=url)
    try:
        with pytest.raises(RedisUnavailable) as info:
            echo.start(value=1)
        shown = str(info.value)
        assert secret not in shown and secret not in info.value.url
        assert f"unix://:***@{tmp_path}/nothing-here.sock" in shown
        line = kernel_status().line()  # what %load_ext prints into the notebook
        assert "cannot reach Redis" in line and secret not in line
    finally:
        af.configure()


def test_unknown_setting_is_a_config_error() -> None:
    with pytest.raises(af.ConfigError, match="unknown setting"):
        af.configure(nonsense=1)
