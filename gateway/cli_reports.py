"""`agent` commands of the reports domain; registered by gateway.cli."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

from beat.errors import ReportDateInvalid, ReportError


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `agent` CLI."""

    @app.command("report")
    def report(
        day: str = typer.Option(None, "--date", help="YYYY-MM-DD; today (FLEET_TIMEZONE) when omitted."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Make the status report now: Markdown, chart and dashboard JSON in FLEET_REPORT_DIR."""
        from gateway.services import reports

        try:
            when = reports.check_date(date.fromisoformat(day)) if day else None
        except ValueError as exc:
            raise typer.BadParameter(f"--date must be YYYY-MM-DD: {exc}") from exc
        except ReportDateInvalid as exc:
            raise typer.BadParameter(str(exc), param_hint="--date") from exc
        try:
            result = reports.run_report(when)
        except ReportError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(3) from exc
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False))
            return
        typer.echo(Path(result["files"]["markdown"]).read_text(encoding="utf-8"))
        typer.echo(f"written: {', '.join(result['files'].values())}")

    @app.command("briefing")
    def briefing(
        hours: float = typer.Option(1.0, help="How far back the figures go."),
        as_json: bool = typer.Option(False, "--json", help="Print the briefing as JSON."),
    ) -> None:
        """A short Markdown briefing of the current state: health, open issues, actions."""
        from gateway.services import reports

        if not 0 < hours <= 168:  # the API's bounds (GET /api/v1/briefing)
            raise typer.BadParameter("must be more than 0 and at most 168 (a week)", param_hint="--hours")
        try:
            result = reports.briefing(hours=hours)
        except ReportError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(3) from exc
        typer.echo(json.dumps(result, ensure_ascii=False) if as_json else result["markdown"])
