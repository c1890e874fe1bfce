"""What `agent status`, health checks and the report ask of a running fleet."""

from __future__ import annotations

from typing import Any

import redis

from fleet_contract import PRIORITY_STEPS, QUEUES, priority_list


def priority_lists(queue: str) -> list[str]:
    """The Redis lists that hold one queue's messages: `ledger`, `ledger:1` ... `ledger:9`."""
    return [priority_list(queue, step) for step in PRIORITY_STEPS]


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


# The URLs of the services `agent up` started (Flower, the API), for the briefing and the report's probe.
SERVICES_KEY = "fleet:up:services"


def register_services(client: redis.Redis, urls: dict[str, str]) -> None:
    """Record the health URL of each service `agent up` runs (replacing what an earlier run recorded)."""
    pipe = client.pipeline()
    pipe.delete(SERVICES_KEY)
    if urls:
        pipe.hset(SERVICES_KEY, mapping=dict[Any, str](urls))  # redis-py types a mapping's keys invariantly
    pipe.execute()


def forget_services(client: redis.Redis) -> None:
    """`agent up` stopped: its services are gone."""
    client.delete(SERVICES_KEY)


def registered_services(client: redis.Redis) -> dict[str, str]:
    """The service URLs `agent up` recorded: {"flower": url, "api": url}, each when it runs."""
    raw = client.hgetall(SERVICES_KEY)
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
