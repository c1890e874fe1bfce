"""Errors of the reports domain; each docstring is its default message."""

from __future__ import annotations


class ReportError(Exception):
    """The report could not be produced."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ReportConfigError(ReportError):
    """The `reports` or `notifications` section of FLEET_CONFIG is invalid."""


class PatternError(ReportConfigError):
    """An issue pattern of the catalogue is invalid."""


class ReportNotFound(ReportError):
    """No report exists for that date."""


class ReportDateInvalid(ReportError):
    """A report date must lie between 2000-01-01 and tomorrow (FLEET_TIMEZONE)."""


class ScheduleInvalid(ReportError):
    """The schedule is invalid: a known task, a known queue and a five-field cron expression are needed."""


class ScheduleNotFound(ReportError):
    """No schedule has that name."""


class ScheduleAlreadyExists(ReportError):
    """A schedule of that name exists; remove it first or pick another name."""


class NotificationFailed(ReportError):
    """A notification could not be delivered (it is retried; the report itself is kept)."""
