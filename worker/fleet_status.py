"""Live state of the fleet that `agent status`, `/metrics` and the report share: queue depths, workers."""

from __future__ import annotations

import logging
from typing import Any

from worker.constants import PRIORITY_SEP, PRIORITY_STEPS, QUEUES

log = logging.getLogger("fleet.reports")


def priority_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps for one queue: step 0 is the bare name, the others `queue:N`."""
    # kombu.transport.redis.MultiChannelPoller._q_for_pri: f"{queue}{sep}{pri}" if pri else queue.
    return [f"{queue}{PRIORITY_SEP}{step}" if step else queue for step in PRIORITY_STEPS]


def queue_depths(redis_client: Any, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting per queue, every priority sub-queue counted, in one round trip."""
    pipe = redis_client.pipeline(transaction=False)
    for queue in queues:
        for name in priority_lists(queue):
            pipe.llen(name)
    lengths = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {queue: int(sum(lengths[i * steps : (i + 1) * steps])) for i, queue in enumerate(queues)}


def workers_online(app: Any, timeout: float = 1.0) -> list[str]:
    """Node names of the workers that answer a control ping within the timeout, sorted."""
    try:
        replies = app.control.ping(timeout=timeout) or []
    except OSError as exc:
        log.warning("workers ping failed: %s", exc, extra={"category": "system"})
        return []
    return sorted(name for reply in replies for name in reply)
