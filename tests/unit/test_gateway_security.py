"""The gateway's doors, pure parts: queue names, option numbers, Redis key names, keys cache, scopes, waits."""

from __future__ import annotations

import gc
import math
import re
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.executor import cache_key
from agents.models import AGENT_QUEUE_PATTERN, WorkflowRequest
from agents.tools import default_registry
from beat.errors import ReportDateInvalid
from beat.schedule import EARLIEST_REPORT_DATE, check_report_date
from gateway import auth, idempotency, ratelimit
from gateway.config import parse_config
from gateway.keys import ANONYMOUS, Principal
from gateway.problems import ApiProblem
from gateway.services.health import Component, SharedProbe
from gateway.services.keys import KeyCache
from gateway.waits import WaitSlots
from worker import telemetry
from worker.agents.ports import stream_key
from worker.constants import PRIORITY_SEP, PRIORITY_STEPS, QUEUES, REDIS_KEY_PREFIX
from worker.errors import SettingsError
from worker.reports import evidence

# Keys Celery and kombu write on the broker themselves: a queue must never be named like one of them either.
CELERY_KEYS = re.compile(r"^(unacked|unacked_index|unacked_mutex|_kombu\..*|celery-task(set)?-meta-.*|celery)$")
# Anything a producer might try as a queue: the fleet's own key names, Celery's, and arbitrary text.
hostile_queues = st.one_of(
    st.sampled_from(["fleet:ratelimit:0a1b2c3d", "fleet:idempotency:x", "unacked", "_kombu.binding.agents"]),
    st.builds(lambda s: REDIS_KEY_PREFIX + s, st.text(max_size=30)),
    st.from_regex(r"agents[-:_./ ]?[A-Za-z0-9:._\-\n]{0,60}", fullmatch=True),
    st.text(max_size=80),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=3),
)


def _lists_of(queue: str) -> set[str]:
    """The Redis lists kombu pushes a queue's messages onto (one per priority step)."""
    return {queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS}


@settings(max_examples=300, deadline=None)
@given(queue=hostile_queues)
def test_a_run_may_name_only_an_agents_queue_and_none_of_its_lists_is_a_fleet_or_celery_key(queue: Any) -> None:
    # Given a workflow request naming any queue
    try:
        request = WorkflowRequest(input="compute 1+1", options={"queue": queue})
    except ValidationError as exc:
        # Then anything but agents[-name] is refused, saying what is allowed
        assert not (isinstance(queue, str) and re.fullmatch(AGENT_QUEUE_PATTERN, queue))
        assert "agents-<name>" in str(exc)
        return
    # And an accepted queue's lists never coincide with a key the fleet or Celery writes
    assert re.fullmatch(AGENT_QUEUE_PATTERN, request.options["queue"])
    for key in _lists_of(request.options["queue"]):
        assert not key.startswith(REDIS_KEY_PREFIX) and not CELERY_KEYS.match(key)


def test_every_redis_key_the_fleet_writes_is_under_its_prefix_and_no_fleet_queue_is() -> None:
    tool = default_registry().get("math.calculate", "v1")
    names = [
        ratelimit.KEY_PREFIX,
        idempotency.KEY_PREFIX,
        auth.FAILURE_PREFIX,
        telemetry.KEY_PREFIX,
        telemetry.MINUTES_KEY,
        evidence.HOST_STATE_KEY,
        evidence.LOG_OFFSETS_KEY,
        stream_key("run-1"),
        cache_key(tool, {"expression": "1+1"}),
    ]
    assert all(name.startswith(REDIS_KEY_PREFIX) for name in names)
    for queue in (*QUEUES, "agents-pool"):
        assert all(not key.startswith(REDIS_KEY_PREFIX) for key in _lists_of(queue))


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
# Storable text only: a lone surrogate or NUL is refused by a check of its own (tests/unit/test_agents_text.py).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=5)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_or_not | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)
@given(options=st.dictionaries(st.sampled_from(["priority", "subtasks", "x", "require_approval"]), json_like))
def test_options_holding_nan_or_infinity_anywhere_are_refused(options: dict[str, Any]) -> None:
    # Given options with numbers anywhere in them (NaN, 1e309 = infinity once parsed)
    try:
        WorkflowRequest(input="compute 1+1", options=options)
    except ValidationError as exc:
        # Then a request is refused exactly when one of them is not finite
        assert _has_non_finite(options), exc
        assert "finite" in str(exc)
        return
    assert not _has_non_finite(options)


def test_the_keys_cache_keeps_no_unknown_token_and_forgets_the_least_recently_used() -> None:
    # Given a cache of 3 entries
    cache = KeyCache(ttl_s=60, max_entries=3)
    # When 1000 lookups find nothing
    for index in range(1000):
        assert cache.get_or_load(f"token:{index}", lambda: None) is None
    # Then nothing was kept
    assert len(cache) == 0
    # And found entries are bounded, the least recently used going first
    for name in ("a", "b", "c"):
        cache.get_or_load(name, lambda name=name: name.upper())
    cache.get("a")
    cache.get_or_load("d", lambda: "D")
    assert len(cache) == 3 and cache.get("b") is None and cache.get("a") == "A"


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=60))
def test_only_the_bearer_scheme_or_x_api_key_carries_a_key(value: str) -> None:
    # Given any Authorization header value
    token = auth.token_of({"authorization": value})
    # Then a key is read only from "Bearer <key>" (any case), never from a bare value
    scheme, _, rest = value.partition(" ")
    assert token == (rest.strip() if scheme.lower() == "bearer" and rest.strip() else None)
    assert auth.token_of({"authorization": value, "x-api-key": "k"}) == (token or "k")


@pytest.mark.parametrize(
    ("held", "owner", "sees"),
    [
        ({"run"}, "aaaa1111", True),
        ({"run"}, "bbbb2222", False),
        ({"run"}, None, False),
        ({"read"}, "bbbb2222", False),
        ({"operator"}, "bbbb2222", True),
        ({"operator"}, None, True),
        ({"admin"}, "bbbb2222", True),
    ],
)
def test_a_run_belongs_to_its_key_and_operators_see_every_run(held: set[str], owner: str | None, sees: bool) -> None:
    assert Principal("aaaa1111", "a", frozenset(held)).owns(owner) is sees


def test_the_operator_scope_runs_and_reads_but_neither_writes_the_ledger_nor_administers() -> None:
    operator = Principal("k", "n", frozenset({"operator"}))
    assert operator.allows("run") and operator.allows("read") and operator.allows("operator")
    assert not operator.allows("ledger:write") and not operator.allows("admin")
    assert ANONYMOUS.owns("anyone") and ANONYMOUS.owns(None)


@settings(max_examples=300, deadline=None)
@given(day=st.dates(), today=st.dates(min_value=date(2020, 1, 1), max_value=date(2100, 1, 1)))
def test_a_report_date_is_accepted_from_2000_to_tomorrow_only(day: date, today: date) -> None:
    in_range = EARLIEST_REPORT_DATE <= day <= today + timedelta(days=1)
    if in_range:
        assert check_report_date(day, today) == day
    else:
        with pytest.raises(ReportDateInvalid, match="out of range"):
            check_report_date(day, today)


@pytest.mark.parametrize("entry", ["10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8", "*"])
def test_trusted_proxies_are_addresses_or_networks(entry: str) -> None:
    assert parse_config({"trusted_proxies": [entry]}).trusted_proxies == [entry]


@pytest.mark.parametrize("entry", ["proxy.example.com", "10.0.0.300", "", "127.0.0.1 "])
def test_a_trusted_proxy_that_is_not_an_address_is_a_settings_error(entry: str) -> None:
    assert parse_config({}).trusted_proxies == []
    with pytest.raises(SettingsError, match="trusted_proxies"):
        parse_config({"trusted_proxies": [entry]})


def test_waits_are_bounded_per_key_then_per_process_with_retry_after() -> None:
    # Given 2 waits per key and 3 in all
    slots = WaitSlots(per_key=2, total=3, retry_after_s=7.5)
    held = [slots.acquire("a"), slots.acquire("a")]
    # Then a key's third is 429, another key's is taken until the process is full, then 503
    with pytest.raises(ApiProblem) as per_key:
        slots.acquire("a")
    assert per_key.value.status == 429 and per_key.value.headers == {"Retry-After": "8"}
    held.append(slots.acquire("b"))
    with pytest.raises(ApiProblem) as total:
        slots.acquire("c")
    assert total.value.status == 503 and total.value.code == "too_many_waiting"
    # And a slot released (twice, harmlessly) makes room again
    held[0].release()
    held[0].release()
    assert slots.waiting == 2
    slots.acquire("c").release()


def test_a_stream_never_read_still_gives_its_wait_slot_back() -> None:
    slots = WaitSlots(per_key=1, total=1, retry_after_s=1)
    # Given a stream dropped before its first item (a client gone before the response started)
    stream = slots.hold_while(slots.acquire("a"), iter([b"x"]))
    del stream
    gc.collect()
    # Then the slot is free; and one read to its end frees it too
    assert slots.waiting == 0
    assert list(slots.hold_while(slots.acquire("a"), iter([b"x", b"y"]))) == [b"x", b"y"]
    assert slots.waiting == 0


def test_concurrent_readiness_callers_share_one_probe() -> None:
    # Given a probe that takes a while
    calls: list[int] = []
    release = threading.Event()

    def probe() -> tuple[bool, list[Component]]:
        calls.append(1)
        release.wait(10)
        return True, [Component("broker", "ok", "PONG")]

    shared = SharedProbe(probe)
    answers: list[bool] = []
    threads = [threading.Thread(target=lambda: answers.append(shared.get(60)[0])) for _ in range(20)]
    # When 20 callers ask at once
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    # Then they all got the answer of a single probe, and a later caller within the period too
    assert answers == [True] * 20 and len(calls) == 1
    shared.get(60)
    assert len(calls) == 1


def test_an_anonymous_caller_is_told_a_components_status_only() -> None:
    component = Component("queue:ledger", "ok", "answered by worker1@host", 2.5)
    assert component.as_dict(details=False) == {"name": "queue:ledger", "status": "ok"}
    assert component.as_dict()["detail"] == "answered by worker1@host"
