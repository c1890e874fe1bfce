"""The `agent` command line: one entry point over the same services as the HTTP API."""

from __future__ import annotations

import sys

import typer

from gateway import cli_agents, cli_keys, cli_ledger, cli_reports
from worker.errors import FleetError

app = typer.Typer(
    help="Agent Fleet: run, watch and operate the Celery worker fleet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1  # the work ran and found problems (rejected events, failed runs)
EXIT_USAGE = 2  # bad arguments (typer's own)
EXIT_UNAVAILABLE = 3  # broker, database or workers unreachable; bad settings


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to FLEET_DATABASE_URL."""
    from worker.migrate import current, upgrade
    from worker.settings import get_settings, mask_url

    url = get_settings().database_url
    upgrade(url)
    typer.echo(f"database {mask_url(url)} at revision {', '.join(current(url))}")


@db_app.command("current")
def db_current() -> None:
    """Print the revisions applied to FLEET_DATABASE_URL."""
    from worker.migrate import current
    from worker.settings import get_settings

    typer.echo(", ".join(current(get_settings().database_url)) or "(empty)")


@app.command("api")
def api(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="uvicorn worker processes."),
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from worker import logging as fleet_logging
    from worker.settings import get_settings

    settings = get_settings()
    fleet_logging.configure("api", settings.log_dir, settings.log_level)
    uvicorn.run("gateway.api:create_app", factory=True, host=host, port=port, workers=workers, log_config=None)


for _module in (cli_ledger, cli_agents, cli_reports, cli_keys):
    _module.register(app)


def main() -> None:
    """Console-script entry point: turn fleet errors into a message and an exit code."""
    try:
        app()
    except FleetError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(EXIT_UNAVAILABLE)
