"""The one Python client on a real Redis: both ways of sending a ledger event put the same message in the list a
ledger worker reads for its priority, and the old ledger.client path is that client."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import fleet_contract as contract
from gateway import client
from ledger import client as legacy
from tests.ledger_cases import setup

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(redis_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A Redis database of the session's server that no worker reads, emptied after the test."""
    url = redis_server.url.rsplit("/", 1)[0] + "/8"
    yield url
    redis.Redis.from_url(url).flushdb()


def waiting(url: str, priority: int) -> list[dict[str, Any]]:
    """The messages waiting on the ledger queue at one priority, oldest first, their body decoded."""
    raw = redis.Redis.from_url(url).lrange(contract.priority_list("ledger", priority), 0, -1)
    messages = [json.loads(item) for item in reversed(raw)]
    for message in messages:
        message["args"] = json.loads(base64.b64decode(message["body"]))[0]
    return messages


def test_both_ways_of_sending_an_event_put_the_same_message_where_a_ledger_worker_reads(broker: str) -> None:
    # Given a producer app made by the client, and an event
    app = client.make_app(broker)
    event = setup("msg")[0]
    # When it is sent at `high` by submit_ledger_events, and by submit (the rules; given `high` by none here)
    [direct] = client.submit_ledger_events([event], app=app, priority="high", correlation_id="order-42")
    [routed] = legacy.submit([event], app, correlation_id="order-42")
    # Then the first waits in the `high` list, the second in the `normal` one (the default rules' level)
    [first] = waiting(broker, contract.PRIORITY_LEVELS["high"])
    [second] = waiting(broker, contract.DEFAULT_PRIORITY)
    assert routed.priority == contract.DEFAULT_PRIORITY and routed.result is not None
    assert (first["headers"]["id"], second["headers"]["id"]) == (direct.id, routed.result.id)
    # And both carry the same task, arguments, correlation header and an argsrepr that hides the accounts
    for message in (first, second):
        assert message["headers"]["task"] == "ledger.quick_run"
        assert message["headers"][contract.CORRELATION_HEADER] == "order-42"
        assert message["properties"]["delivery_info"]["routing_key"] == "ledger"
        assert message["args"] == [event]
        assert event["data"]["account"] not in message["headers"]["argsrepr"]


def test_an_event_that_names_its_correlation_id_keeps_it_when_the_caller_gives_none(broker: str) -> None:
    event = {**setup("own")[0], "correlation_id": "its-own"}
    client.submit_ledger_events([event, setup("own")[1]], broker_url=broker, priority="low")
    first, second = waiting(broker, contract.PRIORITY_LEVELS["low"])
    assert first["headers"][contract.CORRELATION_HEADER] == "its-own"
    assert second["headers"][contract.CORRELATION_HEADER] not in ("", "its-own")
