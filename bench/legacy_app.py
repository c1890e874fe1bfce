"""`celery -A bench.legacy_app worker`: the fleet app on the transport it had before ownership (#20), for bench.transport."""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

import worker.transport as fleet_transport
from bench import legacy_transport
from worker import app


def _legacy(chosen: Any) -> Any:
    return legacy_transport.Transport if chosen is kombu_redis.Transport else chosen


fleet_transport._fleet_transport = _legacy  # the one place the fleet picks its transport

__all__ = ["app"]
