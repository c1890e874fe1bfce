"""User schedules for the API and the CLI: thin calls into the SQL store, in the fleet's time zone."""

from __future__ import annotations

from typing import Any

from beat.user_schedules import ScheduleSpec
from worker.reports import schedules as store
from worker.settings import get_settings


def list_all() -> dict[str, Any]:
    """Every user schedule and the time zone their cron expressions are read in."""
    timezone = get_settings().timezone
    return {"timezone": timezone, "schedules": store.list_schedules(timezone)}


def add(spec: ScheduleSpec, created_by: str | None = None) -> dict[str, Any]:
    """Store a schedule; beat installs it within a few seconds, without a restart."""
    return store.add_schedule(spec, get_settings().timezone, created_by)


def remove(name: str) -> None:
    """Delete a schedule; beat drops it within a few seconds."""
    store.remove_schedule(name)


def pause(name: str, paused: bool) -> dict[str, Any]:
    """Pause (or resume) a schedule without forgetting it."""
    return store.set_enabled(name, not paused, get_settings().timezone)
