"""Every Celery setting, translated from the one settings object (no environment reads here)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab
from kombu.entity import Exchange, Queue

from agents.config import load_config as load_agents_config
from beat.schedule import build_schedule
from fleet_contract import (
    BROKER_TRANSPORT_OPTIONS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    QUEUES,
    ROUTE_PREFIXES,
    TASK_ROUTES,
)
from worker.backend import backend_url
from worker.constants import TIME_LIMITS
from worker.redis_client import celery_options
from worker.settings import get_settings


class QueueTimeLimits:
    """Task annotation: time limits by the queue a task name is routed to."""

    def annotate(self, task: Any) -> dict[str, int] | None:
        """Soft and hard limits for tasks of our queues; None leaves others alone."""
        for prefix, queue in ROUTE_PREFIXES.items():
            if task.name.startswith(prefix):
                soft, hard = TIME_LIMITS[queue]
                return {"soft_time_limit": soft, "time_limit": hard}
        return None


_settings = get_settings()
# Sentinel's master name, TLS options and RedBeat's client, from FLEET_BROKER_URL and friends (docs/settings.md).
_redis = celery_options(_settings)

broker_url = _settings.broker_url
# Celery's Redis backend, storing a state in one atomic script call, where a SUCCESS or REVOKED is final.
result_backend = backend_url(_settings.backend_url)
timezone = _settings.timezone
enable_utc = True

# JSON only: a pickle message can run arbitrary code on the worker, so it is refused and logged.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
event_serializer = "json"

# One direct exchange per queue, named like it: what a plain Celery producer declares for `queue=name`.
task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
task_default_queue = DEFAULT_QUEUE
task_routes = TASK_ROUTES
# Our producers always set a priority; on Redis a message without one lands in the most urgent list.
task_default_priority = DEFAULT_PRIORITY

broker_transport_options = {
    # Ten real priority lists served 0 first; producers of other apps must copy these three keys.
    **BROKER_TRANSPORT_OPTIONS,
    # Redelivery of unacknowledged messages: longer than the longest task plus countdown (see settings).
    "visibility_timeout": _settings.visibility_timeout,
    **_redis["broker"],
    # Read by the fleet's transport only (worker/ownership.py); kombu's own ignores it.
    "fleet_worker_lost_after_s": _settings.worker_lost_after_s,
}
result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout, **_redis["backend"]}
broker_use_ssl = _redis["broker_use_ssl"]
redis_backend_use_ssl = _redis["backend_use_ssl"]
# A result written while Redis restarts is retried (backoff up to 5 s, about 2 min in all), not lost.
result_backend_always_retry = True
result_backend_max_retries = 30
result_backend_base_sleep_between_retries_ms = 100
result_backend_max_sleep_between_retries_ms = 5000
# Prefetch one message per process: a worker holding a backlog cannot let a critical one overtake it.
worker_prefetch_multiplier = 1

# Acknowledge after the task ran: a worker killed mid-task leaves the message to be redelivered.
task_acks_late = True
task_reject_on_worker_lost = True
# A redelivered message whose task already succeeded is not run again (needs a persistent backend).
worker_deduplicate_successful_tasks = True
broker_connection_retry_on_startup = True
broker_channel_error_retry = True
# On Ctrl-C or SIGTERM, give tasks in flight this long before the cold shutdown requeues them.
worker_soft_shutdown_timeout = 20.0
worker_enable_soft_shutdown_on_idle = True
worker_cancel_long_running_tasks_on_connection_loss = True

# Chords and result.get() rely on results living long enough; 0 would keep them forever.
result_expires = 24 * 3600
result_extended = True
task_track_started = True
# Flower sees tasks from the moment they are sent, not only when a worker takes them.
task_send_sent_event = True
worker_send_task_events = True

task_annotations = [QueueTimeLimits()]
# Celery's consumer, recording every message it cannot decode in the dead-letter table; worker/patches.py
# picks the variant (task events batched unless FLEET_STOCK_LIBRARIES).
worker_consumer = "worker.dead_letters:DeadLetterConsumer"
# Recycle worker processes by memory, the bound that matters, and by count only rarely: each replacement
# stalls a process until the pool notices the exit (docs/PERFORMANCE.md, section 5).
worker_max_tasks_per_child = 1_000_000
worker_max_memory_per_child = 512_000  # KiB

# Our own JSON logging is configured in worker.logging; Celery must not replace the root handlers.
worker_hijack_root_logger = False
worker_redirect_stdouts = False
# Several beats may run: the one holding a lock in Redis schedules; another takes over within the lock's TTL.
beat_scheduler = "worker.beat_scheduler:FleetScheduler"
redbeat_redis_url = _redis["redbeat_redis_url"]
redbeat_redis_options: dict[str, object] = _redis["redbeat"]
redbeat_redis_use_ssl = _redis["broker_use_ssl"]
redbeat_key_prefix = "fleet:beat:"
redbeat_lock_timeout = _settings.beat_lock_timeout_s
# The active beat renews its lock (and a standby retries it) at least three times per TTL.
beat_max_loop_interval = max(1, min(5, _settings.beat_lock_timeout_s // 3))
# Collect every minute and report daily, both paused in the offline window (beat/schedule.py, pure).
beat_schedule = {
    name: {"task": entry["task"], "schedule": crontab(**entry["cron"]), "options": entry["options"]}
    for name, entry in build_schedule(_settings.section("reports"), _settings.timezone).items()
}
# Resume agent runs that stopped moving (agents/runner.py::sweep), at all hours; a late sweep is useless.
_agents = load_agents_config(_settings.section("agents"))
beat_schedule["agents-sweep"] = {
    "task": "agents.sweep",
    "schedule": _agents.sweep_every_s,
    "options": {"queue": _agents.queue, "priority": 1, "expires": _agents.sweep_every_s},
}
