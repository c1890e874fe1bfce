"""`agent` commands of the ledger domain; registered by gateway.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `agent` CLI."""
