"""What `agent status`, health checks and the report ask of a running fleet."""

from __future__ import annotations

from typing import Any

import redis

from worker.constants import PRIORITY_SEP, PRIORITY_STEPS, QUEUES


def priority_lists(queue: str) -> list[str]:
    """The Redis lists that hold one queue's messages: `ledger`, `ledger:1` ... `ledger:9`."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def queue_depths(client: redis.Redis, queues: tuple[str, ...] = QUEUES) -> dict[str, int]:
    """Messages waiting per queue, counting every priority sub-queue, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for name in priority_lists(queue):
            pipe.llen(name)
    sizes = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {queue: int(sum(sizes[i * steps : (i + 1) * steps])) for i, queue in enumerate(queues)}


def workers_online(app: Any, timeout: float = 1.0) -> dict[str, list[str]]:
    """Worker node names that answered a ping within the timeout, with the queues each consumes."""
    inspector = app.control.inspect(timeout=timeout)
    replies = inspector.active_queues() or {}
    return {name: sorted(queue["name"] for queue in queues) for name, queues in sorted(replies.items())}
