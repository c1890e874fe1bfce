"""Every Celery setting, translated from the one settings object (no environment reads here)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab
from kombu import Exchange, Queue

from agents.config import load_config as load_agents_config
from beat.schedule import build_schedule
from worker.backend import backend_url
from worker.constants import PRIORITY_SEP, PRIORITY_STEPS, QUEUES, ROUTE_PREFIXES, TIME_LIMITS
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
task_default_queue = "agents"
task_routes = {f"{prefix}*": {"queue": queue} for prefix, queue in ROUTE_PREFIXES.items()}
# Our producers always set a priority; on Redis a message without one lands in the most urgent list.
task_default_priority = 5

broker_transport_options = {
    # Ten real priority lists served 0 first; producers of other apps must copy these three keys.
    "queue_order_strategy": "priority",
    "priority_steps": PRIORITY_STEPS,
    "sep": PRIORITY_SEP,
    # Redelivery of unacknowledged messages: longer than the longest task plus countdown (see settings).
    "visibility_timeout": _settings.visibility_timeout,
    # Read by the fleet's transport only (worker/ownership.py); kombu's own ignores it.
    "fleet_worker_lost_after_s": _settings.worker_lost_after_s,
}
result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout}
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
# Celery's consumer, recording every message it cannot decode in the dead-letter table.
worker_consumer = "worker.dead_letters:FleetConsumer"
# Recycle worker processes to bound leaks from native libraries and caches: by memory, the bound that
# matters, and by count only rarely. Each replacement stalls a process: the old one exits, the pool forks
# a new one, and the pool sometimes notices the exit only at its 5 s maintenance tick (docs/PERFORMANCE.md:
# 0.05-4.3 s per recycle measured, every 10,000 tasks before). RSS stays flat over 100,000 tasks (bench.memory).
worker_max_tasks_per_child = 1_000_000
worker_max_memory_per_child = 512_000  # KiB

# Our own JSON logging is configured in worker.logging; Celery must not replace the root handlers.
worker_hijack_root_logger = False
worker_redirect_stdouts = False
beat_schedule_filename = "var/celerybeat-schedule"
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
