"""`agent` commands of the agents domain; registered by gateway.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `agent` CLI."""


def print_run_status(run_id: str, as_json: bool) -> int:
    """Print one workflow run's status; the exit code (filled in by the agents package)."""
    typer.secho(f"no workflow runs yet: {run_id} is unknown", err=True)
    return 1
