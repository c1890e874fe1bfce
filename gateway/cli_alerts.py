"""`agent alerts`: what fires now, what fired, silences and a test send; registered by gateway.cli."""

from __future__ import annotations

import json
import re

import typer

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `2h`, `1d` in seconds; BadParameter otherwise."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter("must be a number and a unit, like 30m, 2h or 1d", param_hint="--for")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > 90 * 86400:
        raise typer.BadParameter("at most 90d", param_hint="--for")
    return seconds


def register(app: typer.Typer) -> None:
    """Add `agent alerts ...` to the CLI."""
    alerts_app = typer.Typer(help="Alerts: firing incidents, history, silences.", no_args_is_help=True)
    app.add_typer(alerts_app, name="alerts")

    @alerts_app.command("list")
    def list_(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
        """Firing and pending incidents, silences, and which process evaluates."""
        from gateway.services import alerts

        found = alerts.overview()
        if as_json:
            typer.echo(json.dumps(found, indent=2))
            return
        typer.echo(f"evaluator: {found['evaluator'] or 'none (no fleet process holds the lease)'}")
        for incident in found["incidents"]:
            labels = ", ".join(f"{k}={v}" for k, v in incident["labels"].items())
            typer.echo(
                f"{incident['state']:<8} {incident['severity']:<8} {incident['rule']}"
                f"{f' ({labels})' if labels else ''} since {incident['since']}: {incident['summary']}"
            )
        if not found["incidents"]:
            typer.echo("no incident open")
        for rule, until in found["silences"].items():
            typer.echo(f"silenced {rule} until {until}")

    @alerts_app.command("history")
    def history(
        hours: float = typer.Option(24.0, min=0.01, max=24 * 90, help="How far back."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Every transition (pending, firing, resolved) of the last hours, newest first."""
        from gateway.services import alerts

        rows = alerts.history(hours)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            labels = ", ".join(f"{k}={v}" for k, v in row["labels"].items())
            typer.echo(
                f"{row['at']}  {row['state']:<8} {row['rule']}{f' ({labels})' if labels else ''}: {row['summary']}"
            )
        if not rows:
            typer.echo("no alert in that period")

    @alerts_app.command("silence")
    def silence(
        rule: str = typer.Argument(..., help="A rule name (agent alerts list shows the firing ones)."),
        duration: str = typer.Option(..., "--for", help="How long: 30m, 2h, 1d."),
    ) -> None:
        """Send no notification of a rule for a while (its incidents are still recorded)."""
        from gateway.services import alerts

        seconds = parse_duration(duration)
        if rule not in alerts.known_rules():
            raise typer.BadParameter(f"unknown rule {rule!r}; known: {', '.join(alerts.known_rules())}")
        typer.echo(f"{rule} silenced until {alerts.silence(rule, seconds)}")

    @alerts_app.command("unsilence")
    def unsilence(rule: str = typer.Argument(..., help="A silenced rule.")) -> None:
        """End a rule's silence."""
        from gateway.services import alerts

        typer.echo(f"{rule} {'unsilenced' if alerts.unsilence(rule) else 'was not silenced'}")

    @alerts_app.command("test")
    def test(
        channel: str = typer.Option(None, "--channel", help="Only this kind: webhook, slack or email."),
    ) -> None:
        """Send a test alert to every configured channel once; exit 1 if one did not take it."""
        from gateway.services import alerts

        if channel not in (None, "webhook", "slack", "email"):
            raise typer.BadParameter("must be webhook, slack or email", param_hint="--channel")
        outcomes = alerts.send_test(channel)
        if not outcomes:
            typer.echo("no channel configured (alerts.webhooks, notifications.slack_webhook_url, notifications.email)")
            raise typer.Exit(1)
        for channel, taken in outcomes.items():
            typer.echo(f"{channel}: {'sent' if taken else 'FAILED (see the log)'}")
        raise typer.Exit(0 if all(outcomes.values()) else 1)
