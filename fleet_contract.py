"""The producer contract: what the fleet and every application that sends it work must agree on.

Standard library only, so anything may import it: the fleet's Celery settings (celeryconfig.py, worker/), the
domains, and the one Python client (gateway/client.py). tests/unit/test_contract.py checks the README, the docs
and the examples (Python and Node) against it.
"""

from __future__ import annotations

from typing import Any

# Queues, in the order `agent up` lists them; task names are routed to a queue by their prefix.
QUEUES: tuple[str, ...] = ("agents", "ledger", "reports")
ROUTE_PREFIXES: dict[str, str] = {"agents.": "agents", "ledger.": "ledger", "reports.": "reports"}
TASK_ROUTES: dict[str, dict[str, str]] = {f"{prefix}*": {"queue": queue} for prefix, queue in ROUTE_PREFIXES.items()}
DEFAULT_QUEUE = "agents"
# Every task the fleet registers (a test checks the worker app agrees): what a producer or a schedule may send.
TASK_NAMES: tuple[str, ...] = (
    "agents.analyze",
    "agents.execute",
    "agents.gate",
    "agents.run_subtask",
    "agents.run_workflow",
    "agents.sweep",
    "agents.verify",
    "fleet.fail",
    "fleet.ping",
    "ledger.quick_run",
    "ledger.quick_run_batch",
    "reports.collect_metrics",
    "reports.daily_status",
    "reports.notify",
)

# Celery's Redis convention, 0 most urgent; a message without a priority lands in the 0 list.
PRIORITY_LEVELS: dict[str, int] = {"critical": 0, "high": 3, "normal": 5, "low": 8}
DEFAULT_PRIORITY = PRIORITY_LEVELS["normal"]
PRIORITY_STEPS: list[int] = list(range(10))
# A printable separator: kombu's default "\x06\x16" makes sub-queue names unreadable in redis-cli.
PRIORITY_SEP = ":"

# The three transport options a producer must copy exactly, or its messages sit in lists no worker reads.
BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "queue_order_strategy": "priority",
    "priority_steps": PRIORITY_STEPS,
    "sep": PRIORITY_SEP,
}
# JSON only: the fleet refuses pickle (a pickled message can run code on the worker).
SERIALIZATION: dict[str, Any] = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
}

# The header carrying the correlation id through every task a task sends; not "correlation_id", which Celery
# overwrites with the task id.
CORRELATION_HEADER = "x_correlation_id"


def producer_settings() -> dict[str, Any]:
    """The Celery settings of a producer that agrees with the fleet (fresh copies: safe to change)."""
    return {
        **{key: list(value) if isinstance(value, list) else value for key, value in SERIALIZATION.items()},
        "broker_transport_options": {**BROKER_TRANSPORT_OPTIONS, "priority_steps": list(PRIORITY_STEPS)},
        "task_routes": {pattern: dict(route) for pattern, route in TASK_ROUTES.items()},
    }


def priority_of(priority: int | str) -> int:
    """A priority level by name (critical, high, normal, low) or number 0-9, 0 most urgent; ValueError else."""
    value = PRIORITY_LEVELS.get(priority) if isinstance(priority, str) else priority
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ValueError(f"priority must be 0-9 or one of {', '.join(PRIORITY_LEVELS)}, got {priority!r}")
    return value


def priority_list(queue: str, priority: int) -> str:
    """The Redis list a message of this priority waits in: the queue's name for 0, `<queue>:<priority>` else."""
    return f"{queue}{PRIORITY_SEP}{priority}" if priority else queue
