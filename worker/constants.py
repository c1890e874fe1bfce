"""Names and numbers that the public contract and the processes share."""

from __future__ import annotations

# Queues, in the order `agent up` lists them; task names are routed by their prefix.
QUEUES: tuple[str, ...] = ("agents", "ledger", "reports")
ROUTE_PREFIXES: dict[str, str] = {"agents.": "agents", "ledger.": "ledger", "reports.": "reports"}
DEFAULT_QUEUE = "agents"

# Every task the fleet registers (a test checks the worker app agrees): what a schedule may send.
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

# Redis priority convention: 0 is the most urgent; a message without one lands in the 0 list.
PRIORITY_STEPS: list[int] = list(range(10))
# A printable separator: the default "\x06\x16" makes sub-queue names unreadable in redis-cli.
PRIORITY_SEP = ":"
PRIORITY_LEVELS: dict[str, int] = {"critical": 0, "high": 3, "normal": 5, "low": 8}
DEFAULT_PRIORITY = PRIORITY_LEVELS["normal"]

# Every Redis key the fleet writes itself (rate limits, idempotency, progress streams, telemetry, caches) starts
# with this. No queue the fleet accepts does: queues are `agents[-name]`, `ledger`, `reports`, and their priority
# lists `<queue>:<digit>`, so a queue name from a request can never be one of the fleet's keys.
REDIS_KEY_PREFIX = "fleet:"

# Header carrying the producer's correlation id through every task of a canvas; not "correlation_id",
# which Celery overwrites with the task id from the AMQP property of that name.
CORRELATION_HEADER = "x_correlation_id"

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
