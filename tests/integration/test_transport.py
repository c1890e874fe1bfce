"""The fleet's Redis transport on a real Redis: a message not acknowledged comes back, one acknowledged never does."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from kombu import Queue

from tests.support import ROOT
from worker import ownership
from worker.transport import FleetConnection, Transport

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(redis_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A Redis database of the session's server that no worker reads, emptied after the test."""
    url = redis_server.url.rsplit("/", 1)[0] + "/7"
    yield url
    redis.Redis.from_url(url).flushdb()


def _connection(url: str, prefix: str = "") -> Any:
    # A short visibility timeout, so that a message left unacknowledged can be restored within the test.
    return FleetConnection(url, transport_options={"visibility_timeout": 1, "global_keyprefix": prefix})


def _queue() -> Queue:
    name = f"transport-{uuid.uuid4().hex[:8]}"
    return Queue(name, routing_key=name)


def _left(url: str, queue: Queue, prefix: str = "") -> list[Any]:
    """Every message still in the queue, taken and acknowledged."""
    bodies = []
    with _connection(url, prefix) as connection, connection.SimpleQueue(queue) as simple:
        while True:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                return bodies
            bodies.append(message.payload)
            message.ack()


@pytest.mark.patches
def test_the_fleet_app_consumes_and_produces_through_the_fleet_transport_under_a_redis_url(celery_app) -> None:  # type: ignore[no-untyped-def]
    with celery_app.connection_for_read() as consumer:
        assert isinstance(consumer.transport, Transport)
        assert consumer.as_uri().startswith("redis://")  # what Flower reads to find the queues
    with celery_app.pool.acquire(block=True) as producer:
        assert isinstance(producer.transport, Transport)


@pytest.mark.parametrize("prefix", ["", "fleet-test:"], ids=["no-key-prefix", "global-keyprefix"])
def test_a_message_received_but_not_acknowledged_is_back_in_the_queue_after_the_consumer_closes(
    broker: str, prefix: str
) -> None:
    queue = _queue()
    with _connection(broker, prefix) as connection, connection.SimpleQueue(queue) as simple:
        simple.put({"n": 1})
        simple.put({"n": 2})
        first = simple.get(timeout=5)
        first.ack()
        assert simple.get(timeout=5).payload == {"n": 2}  # received, never acknowledged

    assert _left(broker, queue, prefix) == [{"n": 2}]
    assert redis.Redis.from_url(broker).hlen(f"{prefix}unacked") == 0  # restored, and forgotten


def test_a_consumer_killed_after_receiving_leaves_the_message_to_be_redelivered(broker: str) -> None:
    queue = _queue()
    with _connection(broker) as connection, connection.SimpleQueue(queue) as simple:
        simple.put({"n": 1})
    # Given a process that receives the message and dies without acknowledging or closing anything
    child = f"""
        import os
        from kombu import Queue
        from worker.transport import FleetConnection
        connection = FleetConnection({broker!r}, transport_options={{"visibility_timeout": 1}})
        message = connection.SimpleQueue(Queue({queue.name!r}, routing_key={queue.name!r})).get(timeout=5)
        assert message.payload == {{"n": 1}}
        os._exit(3)
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(child)], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 3, done.stderr.decode()
    assert _left(broker, queue) == []  # it is not in the queue: it waits for its visibility timeout

    # When another consumer restores messages older than the visibility timeout (what a worker does on a timer)
    redelivered: list[Any] = []
    with _connection(broker) as connection:
        for _ in range(50):
            connection.default_channel.qos.restore_visible(num=100, interval=1)
            redelivered = _left(broker, queue)
            if redelivered:
                break
    # Then it is delivered again, once
    assert redelivered == [{"n": 1}]
    assert _left(broker, queue) == []


def test_an_acknowledged_message_is_never_redelivered(broker: str) -> None:
    queue = _queue()
    with _connection(broker) as connection, connection.SimpleQueue(queue) as simple:
        simple.put({"n": 1})
        simple.get(timeout=5).ack()
        channel = connection.default_channel
        channel.qos.collect()

    client = redis.Redis.from_url(broker)
    assert client.hlen("unacked") == 0
    assert client.zcard("unacked_index") == 0


def test_messages_read_without_acknowledgement_leave_nothing_held_for_recovery_to_give_back(broker: str) -> None:
    # Control replies are read this way: were they left held, a worker would "return" them once the client exits.
    queue = _queue()
    with _connection(broker) as connection:
        with connection.SimpleQueue(queue) as simple:
            for n in range(3):
                simple.put({"n": n})
        got: list[Any] = []
        with connection.Consumer(queue, no_ack=True, callbacks=[lambda body, _message: got.append(body)]):
            while len(got) < 2:
                connection.drain_events(timeout=5)
        channel = connection.default_channel
        assert channel.basic_get(queue.name, no_ack=True) is not None
        channel.qos.collect()
        client = redis.Redis.from_url(broker)
        assert got == [{"n": 0}, {"n": 1}]
        assert client.hlen("unacked") == 0
        assert client.zcard("unacked_index") == 0
        assert [key for key in client.scan_iter(match=f"{ownership.HELD}*") if client.zcard(key)] == []
    assert _left(broker, queue) == []  # and closing the consumer gave nothing back


@pytest.mark.patches
def test_a_channel_closed_after_its_connection_was_torn_down_gives_its_messages_back_instead_of_crashing(
    broker: str,
) -> None:
    # What Celery does after a lost broker (seen at a Sentinel failover): kombu's close restores the unacknowledged
    # messages through a new pool after the connection's parameters are gone; kombu's AttributeError stopped the worker.
    queue = _queue()
    connection = _connection(broker)
    simple = connection.SimpleQueue(queue)
    simple.put({"n": 1})
    assert simple.get(timeout=5).payload == {"n": 1}  # held, never acknowledged
    channel = connection.default_channel
    channel._disconnect_pools()
    channel.connection.client = None

    connection.maybe_close_channel(channel)  # kombu ignores connection errors here, nothing else

    assert _left(broker, queue) == [{"n": 1}]


def test_a_sentinel_broker_gets_the_same_guard_on_close() -> None:
    from kombu.transport import redis as kombu_redis

    from worker.transport import FleetConnection, SentinelChannel

    transport = FleetConnection("sentinel://127.0.0.1:26379/0").get_transport_cls()
    assert issubclass(transport, kombu_redis.SentinelTransport) and transport.Channel is SentinelChannel
    torn_down = SimpleNamespace(connection=SimpleNamespace(client=None))
    with pytest.raises(redis.exceptions.ConnectionError):
        SentinelChannel._connparams(torn_down)  # type: ignore[arg-type]


def test_a_message_is_not_taken_while_its_bookkeeping_cannot_be_written_and_consuming_resumes_once_it_can(
    broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue()
    client = redis.Redis.from_url(broker)
    client.set("unacked", "not a hash")  # every HSET on it would fail with WRONGTYPE
    with _connection(broker) as connection, connection.SimpleQueue(queue) as simple:
        simple.put({"n": 1})
        simple.put({"n": 2})
        with caplog.at_level(logging.ERROR, logger="fleet.transport"), pytest.raises(simple.Empty):
            simple.get(timeout=1.5)
        assert client.llen(queue.name) == 2  # refused before the pop: nothing vanished
        client.delete("unacked")
        first = simple.get(timeout=5)
        first.ack()
        second = simple.get(timeout=5)
        second.ack()
        connection.default_channel.qos.collect()

    assert (first.payload, second.payload) == ({"n": 1}, {"n": 2})
    refused = [r.getMessage() for r in caplog.records if r.name == "fleet.transport"]
    assert any("redis refused the fetch" in m and "WRONGTYPE" in m for m in refused), refused
    assert client.hlen("unacked") == 0 and client.hlen("fleet:owner") == 0


def _dead_letter_from(source: str) -> Any:
    from sqlalchemy import select

    from worker.db import session_scope
    from worker.models.core import DeadLetter

    with session_scope() as session:
        found = session.scalars(select(DeadLetter).where(DeadLetter.source == source)).first()
        return None if found is None else (found.reason, found.queue, found.raw, found.raw_size)


@pytest.mark.parametrize("path", ["brpop", "basic_get"])
def test_junk_before_a_message_is_kept_as_a_dead_letter_and_the_message_is_delivered(
    broker: str, database_url: str, path: str
) -> None:
    # Given a queue's list holding junk that arrived before a message
    queue = _queue()
    with _connection(broker) as connection, connection.SimpleQueue(queue) as simple:
        redis.Redis.from_url(broker).lpush(queue.name, b"junk \xff")
        simple.put({"n": 1})
        # When a consumer takes from it (BRPOP, as a worker does; RPOP, as basic_get does)
        message = simple.get(timeout=5) if path == "brpop" else connection.default_channel.basic_get(queue.name)
        message.ack()
    # Then it gets the message, and the junk is a dead letter with the list it came from and its bytes
    assert message.payload == {"n": 1}
    assert _dead_letter_from(queue.name) == ("not_json", queue.name, b"junk \xff", 6)
