"""Beat with failover: RedBeat's Redis lock elects one active beat; the others wait to take over.

The fleet's own entries come from config (celeryconfig.beat_schedule); users' entries from SQL
(worker.reports.schedules), read again every loop so that adding, pausing or removing one needs no restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, get_redis

from beat.user_schedules import USER_PREFIX, ScheduleSpec

log = logging.getLogger("fleet.beat")

# Redis set of the user entries this scheduler installed, so a removed or paused one is taken out.
USER_ENTRIES_KEY = "fleet:beat:user-entries"


def _options(spec: ScheduleSpec) -> dict[str, Any]:
    from worker.constants import ROUTE_PREFIXES

    queue = spec.queue or next((q for p, q in ROUTE_PREFIXES.items() if spec.task.startswith(p)), "agents")
    return {"queue": queue, "priority": spec.priority}


class FleetScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat, plus users' SQL schedules and the missed-report catch-up, both done by the lock holder only."""

    _caught_up = False
    _synced_at = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._caught_up:
            self._caught_up = True
            self._send_missed_report()
        if time.monotonic() - self._synced_at >= self.max_interval:
            self._synced_at = time.monotonic()
            self.sync_user_schedules()
        return float(super().tick(*args, **kwargs))

    def _send_missed_report(self) -> None:
        """Only the beat holding the lock checks, once: today's report is sent (late) if the fleet missed it."""
        from worker.reports import service as reporting

        try:
            day = reporting.missed_report_check()
        except Exception:
            log.warning("could not check for a missed report", exc_info=True, extra={"category": "system"})
            return
        if day is not None:
            log.warning("report of %s was missed; sending it now, marked late", day, extra={"category": "system"})
            self.app.send_task("reports.daily_status", (day.isoformat(), "missed"), queue="reports", priority=3)

    def sync_user_schedules(self) -> None:
        """Make the Redis entries match the enabled SQL schedules; a database outage keeps the current ones."""
        from worker.reports.schedules import as_crontab, enabled_specs

        try:
            specs = {USER_PREFIX + spec.name: spec for spec in enabled_specs()}
        except Exception:
            log.warning(
                "user schedules unreadable; keeping the current ones", exc_info=True, extra={"category": "system"}
            )
            return
        client = get_redis(self.app)
        installed = {raw.decode() if isinstance(raw, bytes) else raw for raw in client.smembers(USER_ENTRIES_KEY)}
        for name in installed - specs.keys():
            RedBeatSchedulerEntry(name, app=self.app).delete()
            client.srem(USER_ENTRIES_KEY, name)
            log.info("schedule %s removed", name.removeprefix(USER_PREFIX), extra={"category": "system"})
        for name, spec in specs.items():
            wanted = RedBeatSchedulerEntry(
                name,
                spec.task,
                as_crontab(spec.cron),
                list(spec.args),
                dict(spec.kwargs),
                True,
                _options(spec),
                app=self.app,
            )
            try:
                current = RedBeatSchedulerEntry.from_key(wanted.key, app=self.app)
            except KeyError:
                current = None
            if current is not None and _same(current, wanted):
                continue
            wanted.last_run_at = current.last_run_at if current is not None else self.app.now()
            wanted.save()
            if current is not None:
                wanted.reschedule(wanted.last_run_at)
            client.sadd(USER_ENTRIES_KEY, name)
            log.info("schedule %s installed (%s)", spec.name, spec.cron, extra={"category": "system"})


def _same(a: RedBeatSchedulerEntry, b: RedBeatSchedulerEntry) -> bool:
    return (a.task, a.schedule, list(a.args), dict(a.kwargs), a.options) == (
        b.task,
        b.schedule,
        list(b.args),
        dict(b.kwargs),
        b.options,
    )
