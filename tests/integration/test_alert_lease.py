"""One evaluator leads at a time; when it dies another takes over within the lease; a stale holder cannot renew."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests.support import wait_for
from worker.alerts import Lease

pytestmark = pytest.mark.integration


def test_one_holder_at_a_time_and_a_takeover_once_the_holder_stops_renewing(redis_server) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_server.url)
    key = f"test:lease:{uuid.uuid4().hex}"
    # Given two contenders, the first holding the lease
    first, second = Lease(client, "first", 1.0, key), Lease(client, "second", 1.0, key)
    assert first.hold() and not second.hold()
    # When the first keeps renewing, the second never gets it
    assert first.hold() and not second.hold()
    # When the first dies (stops renewing), the second takes over within the lease's time to live
    wait_for(second.hold, timeout=5, interval=0.1, what="the takeover")
    # Then the first, back from a long pause, can neither renew nor release what it no longer holds
    assert not first.hold()
    first.release()
    assert client.get(key) == b"second"
    # And a clean release hands it over at once
    second.release()
    assert first.hold()
    client.close()
