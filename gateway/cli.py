"""The `agent` command line: one entry point over the same services as the HTTP API.

Each command (here and in the cli_* modules) imports the services it runs when it runs: importing them all
(FastAPI, Celery, SQLAlchemy, the runner) would roughly triple the start-up of `agent --help` or a typo.
"""

from __future__ import annotations

from typing import Any

import typer

from gateway import cli_agents, cli_alerts, cli_backup, cli_errors, cli_keys, cli_ledger, cli_reports, cli_schedules
from gateway.cli_errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

app = typer.Typer(
    help="Agent Fleet: run, watch and operate the Celery worker fleet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


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


@app.command("up")
def up(
    workers: int = typer.Option(1, min=1, help="Worker processes (each one core at most: scale by processes)."),
    concurrency: int = typer.Option(1, min=1, help="Pool processes per worker."),
    queues: str = typer.Option("agents,ledger,reports", help="Queues every worker consumes."),
    api_port: int = typer.Option(8000, min=1, max=65535, help="HTTP API port."),
    flower_port: int = typer.Option(5555, min=1, max=65535, help="Flower port."),
    beat: bool = typer.Option(True, help="Run Celery Beat (exactly one per fleet)."),
    flower: bool = typer.Option(True, help="Run Flower."),
    api: bool = typer.Option(True, help="Run the HTTP API."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Print every log line here (default: start-up, warnings, errors)."
    ),
) -> None:
    """Run the whole fleet here: broker (bundled if none answers), database, workers, beat, Flower, API."""
    from worker.runner import Fleet, FleetOptions
    from worker.settings import get_settings

    _check_queues(queues)
    options = FleetOptions(
        workers=workers,
        concurrency=concurrency,
        queues=queues,
        beat=beat,
        flower=flower,
        api=api,
        api_port=api_port,
        flower_port=flower_port,
        verbose=verbose,
    )
    Fleet(get_settings(), options, announce=_development_key).run()


def _development_key() -> list[str]:
    """Create an admin key for a newcomer's API when none exists, and say how to use it."""
    from gateway.services.keys import ensure_development_key

    token = ensure_development_key()
    if token is None:
        return ["API keys exist: send one as 'Authorization: Bearer <key>' (agent keys create|list|revoke)"]
    return [f"API key (admin, development, shown once): {token}", "  send it as 'Authorization: Bearer <key>'"]


def _check_queues(queues: str) -> None:
    from worker.constants import QUEUES

    unknown = sorted(set(queues.split(",")) - set(QUEUES))
    if unknown:
        raise typer.BadParameter(f"unknown queues {unknown}; known: {', '.join(QUEUES)}", param_hint="--queues")


@app.command("status")
def status(
    run_id: str | None = typer.Argument(None, help="A workflow run id; without it, the fleet's status."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    timeout: float = typer.Option(1.0, help="Seconds to wait for workers to answer."),
) -> None:
    """Workers online, queue depths, database and broker health (or one run's status)."""
    import json

    from gateway.services.fleet import fleet_status

    if run_id is not None:
        from gateway.cli_agents import print_run_status

        raise typer.Exit(print_run_status(run_id, as_json))
    report = fleet_status(timeout=timeout)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_status(report)
    raise typer.Exit(EXIT_OK if report["healthy"] else EXIT_UNAVAILABLE)


def _print_status(report: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for component in ("broker", "database"):
        info = report[component]
        assert isinstance(info, dict)
        mark = "[green]ok[/]" if info["ok"] else "[red]down[/]"
        console.print(f"{component:<9} {mark}  {info.get('detail', '')}")
    table = Table("worker", "queues")
    workers = report["workers"]
    assert isinstance(workers, dict)
    for name, worker_queues in workers.items():
        table.add_row(name, ", ".join(worker_queues))
    console.print(table if workers else "[yellow]no worker answered[/]")
    depths = Table("queue", "waiting", "served by")
    queues = report["queues"]
    assert isinstance(queues, dict)
    for queue, info in queues.items():
        depths.add_row(queue, str(info["depth"]), str(info["workers"]))
    console.print(depths)
    endpoints = report.get("model_endpoints")
    if isinstance(endpoints, dict) and endpoints:
        marks = {"closed": "[green]closed[/]", "half_open": "[yellow]half-open[/]", "open": "[red]open[/]"}
        console.print("model endpoints (circuit): " + ", ".join(f"{n} {marks[s]}" for n, s in endpoints.items()))
    _print_held(console, report.get("held"))
    letters = report.get("dead_letters")
    if isinstance(letters, dict) and letters["counts"]:
        counts = ", ".join(f"{reason} {count}" for reason, count in letters["counts"].items())
        console.print(f"[yellow]refused messages (24 h): {counts}[/]")
        for letter in letters["latest"]:
            console.print(f"  {letter['at']}  {letter['reason']}  {letter['task_name']}  {letter['detail'][:80]}")


def _print_held(console: Any, held: Any) -> None:
    from rich.table import Table

    if not isinstance(held, dict):
        return
    table = Table("worker process", "last heartbeat", "messages held", "oldest")
    for consumer in held["consumers"]:
        ages = [m["age_s"] for m in consumer["messages"]]
        oldest = f"{max(ages):.0f} s" if ages else "-"
        table.add_row(consumer["consumer"], f"{consumer['last_heartbeat_s']:.0f} s ago", str(len(ages)), oldest)
    if held["consumers"]:
        console.print(table)
    for consumer in held["orphaned"]:
        beat = consumer["last_heartbeat_s"]
        since = "never beat" if beat is None else f"silent for {beat:.0f} s"
        console.print(
            f"[red]orphaned: {len(consumer['messages'])} messages held by {consumer['consumer']} ({since})[/]"
        )
        for message in consumer["messages"]:
            console.print(f"  {message['list']}  {message['tag']}  held {message['age_s']:.0f} s")
    if held["orphaned"]:
        console.print("[yellow]they go back to their queues by themselves; `agent recover` does it now[/]")


@app.command("recover")
def recover(
    worker: str | None = typer.Option(None, "--worker", help="A worker's node name (name@host) or one process of it."),
    force: bool = typer.Option(False, "--force", help="Take the messages of a worker that still beats."),
    after: float = typer.Option(15.0, min=0, help="Without --worker: processes silent this many seconds."),
) -> None:
    """Give a dead worker's messages back to their queues now (the fleet does it by itself after
    FLEET_WORKER_LOST_AFTER_S)."""
    from worker import ownership
    from worker.constants import PRIORITY_SEP
    from worker.redis_client import get_redis
    from worker.settings import get_settings

    client = get_redis()
    consumers = ownership.holdings(client, get_settings().worker_lost_after_s)
    if worker is None:
        chosen = [c for c in consumers if c["last_heartbeat_s"] is None or c["last_heartbeat_s"] > after]
    else:
        chosen = [c for c in consumers if worker in (c["worker"], c["consumer"])]
        if not chosen:
            typer.echo(f"no process of worker {worker!r} holds messages or beats", err=True)
            raise typer.Exit(EXIT_USAGE)
        alive = [c for c in chosen if c["last_heartbeat_s"] is not None and c["last_heartbeat_s"] <= after]
        if alive and not force:
            beat = min(c["last_heartbeat_s"] for c in alive)
            typer.echo(f"{worker} beat {beat:.0f} s ago: it looks alive (--force takes its messages anyway)", err=True)
            raise typer.Exit(EXIT_USAGE)
    total = 0
    for consumer in chosen:
        returned = ownership.recover(client, sep=PRIORITY_SEP, lost_after_s=0, reason="operator",
                                     consumer=consumer["consumer"])  # fmt: skip
        for (_name, queue), count in sorted(returned.items()):
            typer.echo(f"{consumer['consumer']}: {count} messages back in {queue}")
            total += count
    typer.echo(f"{total} messages given back from {len(chosen)} worker processes")
    raise typer.Exit(EXIT_OK)


@app.command("api")
def api(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from gateway.config import get_gateway_config
    from worker import logging as fleet_logging

    fleet_logging.configure_process("api")
    # Forwarded headers only from the configured proxies: uvicorn otherwise believes any client on loopback.
    trusted = get_gateway_config().trusted_proxies
    uvicorn.run(
        "gateway.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


for _module in (cli_ledger, cli_agents, cli_reports, cli_keys, cli_backup, cli_schedules, cli_alerts):
    _module.register(app)


def main() -> None:
    """Console-script entry point: an error a user can cause or fix is one line on stderr and its exit code."""
    cli_errors.exit_with(app)


if __name__ == "__main__":
    main()
