"""`agent schedule list|add|remove|pause|resume`: cron entries beat sends without a restart; registered by gateway.cli."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

schedule_app = typer.Typer(
    help="Schedules that send a named task at cron times (in FLEET_TIMEZONE); beat picks changes up within seconds.",
    no_args_is_help=True,
)


def _json_value(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc.msg} at column {exc.colno}", param_hint=option) from None


@schedule_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every user schedule."""
    from gateway.services import schedules

    found = schedules.list_all()
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False))
        return
    if not found["schedules"]:
        typer.echo("no schedules (agent schedule add --help)")
        return
    table = Table("name", "cron", "task", "queue", "priority", "enabled", title=f"time zone {found['timezone']}")
    for s in found["schedules"]:
        table.add_row(
            s["name"], s["cron"], s["task"], s["queue"] or "-", str(s["priority"]), "yes" if s["enabled"] else "paused"
        )
    Console().print(table)


@schedule_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="lower-case letters, digits, '.', '_', '-'")],
    cron: Annotated[str, typer.Option(help="'minute hour day month weekday', e.g. '0 * * * *' (hourly)")],
    task: Annotated[str, typer.Option(help="A task name the fleet registers, e.g. fleet.ping")],
    args: Annotated[str, typer.Option(help="JSON list of positional arguments")] = "[]",
    kwargs: Annotated[str, typer.Option(help="JSON object of keyword arguments")] = "{}",
    queue: Annotated[str | None, typer.Option(help="agents, ledger or reports; by task name when omitted")] = None,
    priority: Annotated[int, typer.Option(min=0, max=9, help="0 most urgent, 9 least")] = 5,
    paused: Annotated[bool, typer.Option("--paused", help="Store it paused")] = False,
) -> None:
    """Add a schedule."""
    from beat.user_schedules import ScheduleSpec
    from gateway.services import schedules

    spec = ScheduleSpec(
        name=name,
        cron=cron,
        task=task,
        args=_json_value(args, "--args"),
        kwargs=_json_value(kwargs, "--kwargs"),
        queue=queue,
        priority=priority,
        enabled=not paused,
    )
    stored = schedules.add(spec, created_by="cli")
    typer.echo(f"schedule {stored['name']} added: {stored['task']} at '{stored['cron']}' ({stored['timezone']})")


@schedule_app.command("remove")
def remove_command(name: str) -> None:
    """Remove a schedule."""
    from gateway.services import schedules

    schedules.remove(name)
    typer.echo(f"schedule {name} removed")


@schedule_app.command("pause")
def pause_command(name: str) -> None:
    """Stop sending until resumed."""
    from gateway.services import schedules

    schedules.pause(name, True)
    typer.echo(f"schedule {name} paused")


@schedule_app.command("resume")
def resume_command(name: str) -> None:
    """Send again from the next cron time."""
    from gateway.services import schedules

    schedules.pause(name, False)
    typer.echo(f"schedule {name} resumed")


def register(app: typer.Typer) -> None:
    """Add `agent schedule` to the CLI."""
    app.add_typer(schedule_app, name="schedule")
