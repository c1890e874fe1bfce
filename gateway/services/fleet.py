"""The fleet's own status: what `agent status` and the health endpoints report."""

from __future__ import annotations

from typing import Any

import redis

from worker import db
from worker.application import get_app
from worker.constants import QUEUES
from worker.dead_letters import recent
from worker.errors import DatabaseUnavailable
from worker.fleet_status import queue_depths, workers_online
from worker.redis_client import get_redis
from worker.settings import get_settings, mask_url


def fleet_status(timeout: float = 1.0) -> dict[str, Any]:
    """Broker and database health, workers online with their queues, queue depths."""
    app = get_app()

    settings = get_settings()
    report: dict[str, Any] = {"healthy": True}
    try:
        depths = queue_depths(get_redis())
        report["broker"] = {"ok": True, "detail": mask_url(settings.broker_url)}
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        depths = {}
        report["broker"] = {"ok": False, "detail": f"{mask_url(settings.broker_url)}: {exc}"}
    try:
        latency = db.check()
        report["database"] = {"ok": True, "detail": f"{mask_url(settings.database_url)} ({latency:.1f} ms)"}
    except DatabaseUnavailable as exc:
        report["database"] = {"ok": False, "detail": str(exc)}
    if report["database"]["ok"]:
        report["dead_letters"] = recent(hours=24)
    if report["broker"]["ok"]:
        from worker.agents.breakers import statuses
        from worker.agents.ports import agents_config

        report["model_endpoints"] = statuses(agents_config().breaker)

        from worker.ownership import holdings

        consumers = holdings(get_redis(), settings.worker_lost_after_s)
        report["held"] = {
            "consumers": [c for c in consumers if not c["lost"]],
            "orphaned": [c for c in consumers if c["lost"] and c["messages"]],
        }
    workers = workers_online(app, timeout=timeout) if report["broker"]["ok"] else {}
    report["workers"] = workers
    report["queues"] = {
        queue: {"depth": depths.get(queue), "workers": sum(queue in qs for qs in workers.values())} for queue in QUEUES
    }
    report["healthy"] = bool(report["broker"]["ok"] and report["database"]["ok"] and workers)
    return report
