"""Names and numbers the fleet's processes share; the producer contract comes from fleet_contract."""

from __future__ import annotations

from fleet_contract import (
    CORRELATION_HEADER,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    PRIORITY_LEVELS,
    PRIORITY_SEP,
    PRIORITY_STEPS,
    QUEUES,
    ROUTE_PREFIXES,
    TASK_NAMES,
)

# Every Redis key the fleet writes itself (rate limits, idempotency, progress streams, telemetry, caches) starts
# with this. No queue the fleet accepts does: queues are `agents[-name]`, `ledger`, `reports`, and their priority
# lists `<queue>:<digit>`, so a queue name from a request can never be one of the fleet's keys.
REDIS_KEY_PREFIX = "fleet:"

# Time limits per queue (soft, hard) in seconds; the visibility timeout must exceed the largest.
TIME_LIMITS: dict[str, tuple[int, int]] = {
    "agents": (300, 330),
    "ledger": (120, 150),
    "reports": (600, 660),
}
# Longest countdown a task of ours schedules (ledger sequence retries, tool backoff).
MAX_COUNTDOWN_S = 300

# Exit code of a worker whose watchdog found it stalled (EX_SOFTWARE: a supervisor restarts on a non-zero exit).
EXIT_STALLED = 70

# Redis server bundled for newcomers and tests when no broker answers.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "sqlite:///var/fleet.db"


__all__ = [
    "CORRELATION_HEADER",
    "DEFAULT_BROKER_URL",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PRIORITY",
    "DEFAULT_QUEUE",
    "EXIT_STALLED",
    "MAX_COUNTDOWN_S",
    "PRIORITY_LEVELS",
    "PRIORITY_SEP",
    "PRIORITY_STEPS",
    "QUEUES",
    "REDIS_KEY_PREFIX",
    "ROUTE_PREFIXES",
    "TASK_NAMES",
    "TIME_LIMITS",
]
