"""Errors of the fleet's infrastructure; each docstring is its default message."""

from __future__ import annotations


class FleetError(Exception):
    """The fleet could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class SettingsError(FleetError):
    """A setting is missing or invalid."""


class BrokerUnavailable(FleetError):
    """No broker answers at the configured URL."""


class DatabaseUnavailable(FleetError):
    """The database does not answer."""


class WorkersUnavailable(FleetError):
    """No worker consumed the queue in time."""
