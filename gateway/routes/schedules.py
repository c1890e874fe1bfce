"""Schedules added at run time: cron entries that send a named task; beat picks them up without a restart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from beat.user_schedules import ScheduleSpec
from gateway.deps import ReadKey, require
from gateway.keys import Principal
from gateway.responses import KEYED, Shape, problems
from gateway.services import schedules as service

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=problems(*KEYED))
OperatorKey = Annotated[Principal, Depends(require("operator"))]
ScheduleName = Annotated[str, Path(min_length=1, max_length=64)]


class Schedule(BaseModel):
    """A stored schedule, its cron expression read in `timezone` (FLEET_TIMEZONE)."""

    # Exactly these keys (a Shape's extra keys would give pydantic's __init__ a `**kwargs` beside the field).
    model_config = ConfigDict(extra="forbid")

    name: str
    task: str
    cron: str
    timezone: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None
    priority: int
    enabled: bool
    created_by: str | None
    created_at: str
    updated_at: str


class ScheduleList(Shape):
    """Every user schedule (the fleet's own entries live in config: docs/reports.md)."""

    timezone: str
    schedules: list[Schedule]


class Removed(Shape):
    """The name of the schedule removed."""

    removed: str


@router.get("", response_model=ScheduleList)
def list_schedules(_who: ReadKey) -> dict[str, Any]:
    """Every user schedule, by name."""
    return service.list_all()


@router.post("", response_model=Schedule, status_code=201, responses=problems(409, 422))
def add_schedule(spec: ScheduleSpec, who: OperatorKey) -> dict[str, Any]:
    """Add a schedule (422 for an unknown task, queue or a bad cron expression; 409 for a taken name)."""
    return service.add(spec, created_by=who.key_id)


@router.delete("/{name}", response_model=Removed, responses=problems(404, 422))
def remove_schedule(name: ScheduleName, _who: OperatorKey) -> dict[str, Any]:
    """Remove a schedule (404 when none has that name)."""
    service.remove(name)
    return {"removed": name}


@router.post("/{name}/pause", response_model=Schedule, responses=problems(404, 409, 422))
def pause_schedule(name: ScheduleName, _who: OperatorKey) -> dict[str, Any]:
    """Stop sending the task until resumed; the schedule is kept."""
    return service.pause(name, True)


@router.post("/{name}/resume", response_model=Schedule, responses=problems(404, 409, 422))
def resume_schedule(name: ScheduleName, _who: OperatorKey) -> dict[str, Any]:
    """Send the task again at its next cron time."""
    return service.pause(name, False)
