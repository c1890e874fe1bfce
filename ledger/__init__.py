"""Ledger quick runs: parse, validate and apply ledger events against a shadow ledger (pure code)."""

from __future__ import annotations


class LedgerError(Exception):
    """The ledger could not process the request."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(LedgerError):
    """The `ledger` section of FLEET_CONFIG is invalid."""
