"""Schedules users add at run time (`agent schedule`, /api/v1/schedules): what a valid one is, as plain data."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from beat.errors import ScheduleInvalid

# The fleet's own entries (metrics collection, the daily report, the agents sweep) are named in config;
# a user's entry is stored under this prefix in the scheduler so the two can never collide.
USER_PREFIX = "user:"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# minute hour day-of-month month day-of-week: digits, names, ranges, lists and steps only.
CRON_FIELD = re.compile(r"^[A-Za-z0-9*/,\-]{1,64}$")
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def cron_fields(expression: str) -> dict[str, str]:
    """The five fields of a cron expression by Celery's crontab names; ScheduleInvalid when it has not five."""
    parts = expression.split()
    if len(parts) != len(CRON_FIELDS):
        raise ScheduleInvalid(
            f"cron {expression!r} needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    for name, part in zip(CRON_FIELDS, parts, strict=True):
        if not CRON_FIELD.match(part):
            raise ScheduleInvalid(f"cron {expression!r}: the {name.replace('_', ' ')} field {part!r} is not valid")
    return dict(zip(CRON_FIELDS, parts, strict=True))


class ScheduleSpec(BaseModel):
    """One user schedule: send `task` with these arguments at every time the cron expression names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="lower-case letters, digits, '.', '_' and '-'; 64 at most")
    task: str = Field(description="a task name the fleet registers, e.g. fleet.ping")
    cron: str = Field(description="minute hour day-of-month month day-of-week, in the fleet's time zone")
    args: list[Any] = Field(default_factory=list, max_length=32)
    kwargs: dict[str, Any] = Field(default_factory=dict, max_length=32)
    queue: str | None = Field(default=None, description="one of the fleet's queues; by task name when absent")
    priority: int = Field(default=5, ge=0, le=9)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            cron_fields(value)
        except ScheduleInvalid as exc:
            raise ValueError(str(exc)) from None
        return " ".join(value.split())


def check_target(spec: ScheduleSpec, task_names: tuple[str, ...], queues: tuple[str, ...]) -> None:
    """ScheduleInvalid unless the task is one the fleet registers and the queue one it consumes."""
    if spec.task not in task_names:
        raise ScheduleInvalid(f"unknown task {spec.task!r}: schedules send one of {', '.join(task_names)}")
    if spec.queue is not None and spec.queue not in queues:
        raise ScheduleInvalid(f"unknown queue {spec.queue!r}: one of {', '.join(queues)}")
