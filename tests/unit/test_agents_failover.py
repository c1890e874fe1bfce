"""Model endpoints that fail over: the circuit breaker's states, and the openai profile along a chain of fake
servers that fail, hang and recover."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.breaker import BreakerSettings, CircuitBreaker, MemoryBreakers
from agents.config import Endpoint, OpenAISettings
from agents.errors import ProfileError
from agents.models import WorkflowRequest
from agents.profiles import OpenAIProfile
from agents.tools import default_registry
from tests.fake_openai import FakeOpenAI


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock, failures: int = 2, window_s: float = 10, reset_s: float = 5) -> CircuitBreaker:
    settings = BreakerSettings(failures=failures, window_s=window_s, reset_s=reset_s)
    return CircuitBreaker(settings, MemoryBreakers(clock=clock), clock)


def test_a_breaker_opens_after_n_failures_inside_the_window_and_refuses_calls() -> None:
    clock = Clock()
    breaker = _breaker(clock)

    assert breaker.failed("a") is False
    assert breaker.admit("a").allowed
    assert breaker.failed("a") is True  # the second failure in 10 s opens it

    assert not breaker.admit("a").allowed
    assert breaker.statuses() == {"a": "open"}


def test_failures_further_apart_than_the_window_do_not_open_it() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    breaker.failed("a")
    clock.now += 11
    assert breaker.failed("a") is False
    assert breaker.admit("a").allowed


def test_after_the_reset_time_one_probe_goes_through_and_its_success_closes_the_breaker() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    breaker.failed("a"), breaker.failed("a")
    clock.now += 5

    first, second = breaker.admit("a"), breaker.admit("a")
    assert (first.allowed, first.probe) == (True, True)
    assert not second.allowed  # only one probe while half-open
    assert breaker.statuses() == {"a": "half_open"}
    assert breaker.succeeded("a") is True
    assert breaker.statuses() == {"a": "closed"} and breaker.admit("a").allowed


def test_a_failed_probe_opens_the_breaker_again_for_another_reset_time() -> None:
    clock = Clock()
    breaker = _breaker(clock, failures=1)
    breaker.failed("a")
    clock.now += 5
    assert breaker.admit("a").probe

    assert breaker.failed("a") is True
    clock.now += 4
    assert not breaker.admit("a").allowed
    clock.now += 1
    assert breaker.admit("a").allowed


@given(st.lists(st.sampled_from(["fail", "ok", "tick"]), max_size=40))
def test_whatever_happens_an_open_breaker_admits_nothing_before_its_reset_time(steps: list[str]) -> None:
    clock = Clock()
    breaker = _breaker(clock, failures=3, window_s=10, reset_s=5)
    for step in steps:
        if step == "fail":
            breaker.failed("a")
        elif step == "ok":
            breaker.succeeded("a")
        else:
            clock.now += 1
        state = breaker.store.load("a")
        if state.status == "open" and state.probe_at is not None and clock.now < state.probe_at:
            assert not breaker.admit("a").allowed


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI() as primary, FakeOpenAI() as backup:
        yield primary, backup


def _chain(primary: FakeOpenAI, backup: FakeOpenAI, **extra: object) -> OpenAISettings:
    chain = (
        Endpoint(name="primary", base_url=primary.base_url),
        Endpoint(name="backup", base_url=backup.base_url, model="fake-2", prompt_price_per_1k=1.0),
    )
    values: dict[str, object] = {"model": "fake-1", "timeout_s": 0.5, "retries": 1, "retry_backoff_s": 0.01,
                                 "prompt_price_per_1k": 0.5, "completion_price_per_1k": 2.0, "chain": chain}  # fmt: skip
    return OpenAISettings.model_validate({**values, **extra})


def _plan(profile: OpenAIProfile) -> tuple[str | None, tuple[str, ...], float]:
    plan, usage = profile.plan(WorkflowRequest(input="compute 21*2", profile="openai"), default_registry())
    assert plan.subtasks[0].args == {"expression": "21*2"}
    return usage.provider, usage.failovers, usage.cost


@pytest.mark.parametrize("outage", ["fail", "hang"])
def test_when_the_first_endpoint_is_down_the_second_answers_and_the_usage_names_it(
    servers: tuple[FakeOpenAI, FakeOpenAI], outage: str, caplog: pytest.LogCaptureFixture
) -> None:
    primary, backup = servers
    primary.mode = outage
    clock = Clock()
    breaker = _breaker(clock, failures=2)
    profile = OpenAIProfile(_chain(primary, backup), "k", breaker=breaker)

    with caplog.at_level(logging.ERROR, logger="fleet.agents.providers"):
        provider, failovers, cost = _plan(profile)

    assert provider == "backup:fake-2"
    assert len(failovers) == 2 and all(f.startswith("primary: ") for f in failovers)
    assert cost == 0.12 + 0.06  # the backup's own prompt price
    assert primary.answered() == 2 and backup.answered() == 1
    assert backup.requests[0][1]["model"] == "fake-2"
    assert breaker.statuses() == {"primary": "open"}
    assert "circuit opened" in caplog.text


def test_with_the_breaker_open_the_first_endpoint_is_not_called_until_it_recovers(
    servers: tuple[FakeOpenAI, FakeOpenAI],
) -> None:
    primary, backup = servers
    primary.mode = "fail"
    clock = Clock()
    breaker = _breaker(clock, failures=2, reset_s=5)
    profile = OpenAIProfile(_chain(primary, backup), "k", breaker=breaker)
    _plan(profile)
    calls = primary.answered()

    assert _plan(profile)[1] == ("primary: circuit open, skipped",)
    assert primary.answered() == calls

    primary.mode = "ok"
    clock.now += 5
    assert _plan(profile)[0] == "primary:fake-1"  # the half-open probe answers
    assert breaker.statuses() == {"primary": "closed"}


def test_when_every_endpoint_is_down_the_error_names_each_one(servers: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    primary, backup = servers
    primary.mode = backup.mode = "fail"
    profile = OpenAIProfile(_chain(primary, backup), "k", breaker=_breaker(Clock(), failures=5))

    with pytest.raises(ProfileError, match=r"no model endpoint answered: primary: HTTP 503.*backup: HTTP 503"):
        _plan(profile)


def test_retries_stop_at_the_deadline(servers: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    primary, backup = servers
    primary.mode = backup.mode = "hang"
    settings = _chain(primary, backup, retries=5, deadline_s=0.3)
    profile = OpenAIProfile(settings, "k", breaker=_breaker(Clock(), failures=100))

    with pytest.raises(ProfileError, match=r"deadline passed|timed out"):
        _plan(profile)
    assert primary.answered() + backup.answered() <= 2  # the deadline, not the retry count, ended it
