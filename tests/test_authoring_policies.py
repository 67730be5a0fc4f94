"""Policies: validation at declaration time, backoff arithmetic, composition."""

from __future__ import annotations

import pytest

from aiflow_nb import CachePolicy, Policies, RetryPolicy, TimeoutPolicy, component


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": 1.5},
        {"attempts": True},
        {"backoff": "linear"},
        {"initial": -1},
        {"max_delay": -0.1},
        {"jitter": -1},
        {"retry_on": (42,)},
    ],
)
def test_invalid_retry_values_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CachePolicy(ttl=0),
        lambda: CachePolicy(ttl=-5),
        lambda: TimeoutPolicy(0),
        lambda: TimeoutPolicy(-1),
        lambda: CachePolicy(key="not callable"),  # type: ignore[arg-type]
    ],
)
def test_invalid_cache_and_timeout_values_raise_value_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        make()


def test_invalid_values_through_fluent_api_fail_at_declaration() -> None:
    @component
    def f(x: int) -> int:
        return x

    with pytest.raises(ValueError):
        f.with_retry(attempts=0)
    with pytest.raises(ValueError):
        f.with_timeout(-1)
    with pytest.raises(ValueError):
        f.with_cache(ttl=0)


def test_exponential_delay_doubles_and_caps() -> None:
    p = RetryPolicy(attempts=6, initial=0.5, max_delay=3)
    assert [p.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(backoff="fixed", initial=0.7).delay(4) == 0.7


def test_single_exception_type_is_accepted_for_retry_on() -> None:
    assert RetryPolicy(retry_on=KeyError).retry_on == (KeyError,)  # type: ignore[arg-type]


def test_policies_compose_right_side_wins_and_leaves_original_alone() -> None:
    @component
    def f(x: int) -> int:
        return x

    g = f.with_retry(attempts=4).with_timeout(2)
    h = g.with_timeout(5).with_cache(ttl=10)
    assert f.policies == Policies()
    assert g.policies.retry.attempts == 4 and g.policies.timeout == TimeoutPolicy(2)
    assert h.policies.retry.attempts == 4 and h.policies.timeout == TimeoutPolicy(5)
    assert h.policies.cache == CachePolicy(ttl=10)


def test_decorator_arguments_equal_fluent_api() -> None:
    @component(retry=dict(attempts=3, initial=0.1), cache=60, timeout=1.5, fallback=0)
    def a(x: int) -> int:
        return x

    assert a.policies.retry == RetryPolicy(attempts=3, initial=0.1)
    assert a.policies.cache == CachePolicy(ttl=60)
    assert a.policies.timeout == TimeoutPolicy(1.5)
    assert a.policies.fallback is not None and a.policies.fallback.value == 0


def test_retry_true_means_the_default_retry_policy_like_cache_true() -> None:
    # retry=True used to reach Policies as the bool and fail every call with AttributeError
    @component(retry=True, cache=True)
    def a(x: int) -> int:
        return x

    assert a.policies.retry == RetryPolicy()
    assert a.policies.cache == CachePolicy()


def test_secret_args_must_be_parameters() -> None:
    with pytest.raises(ValueError, match="not parameters"):

        @component(secret_args=["api_key"])
        def f(x: int) -> int:
            return x
