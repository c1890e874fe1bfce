"""`agent ledger ...` commands; registered by gateway.cli."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway.cli_errors import EXIT_FAILED, EXIT_USAGE, require_broker

ledger_app = typer.Typer(help="Ledger quick runs: generate, submit and check ledger events.", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON for machines.")


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `agent` CLI."""
    app.add_typer(ledger_app, name="ledger")


def _app() -> Any:
    from worker.application import app

    return app


@ledger_app.command("generate")
def generate(
    events: int = typer.Option(1000, "--events", min=1, help="Number of events."),
    anomalies: int = typer.Option(0, "--anomalies", min=0, help="Unusual amounts to inject."),
    faults: int = typer.Option(0, "--faults", min=0, help="Events to inject that must be rejected."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same stream (timestamps end at the current minute)."),
    labels: Annotated[Path | None, typer.Option("--labels", help="Write each event's label here.")] = None,
) -> None:
    """Print a realistic seeded stream of events as JSONL."""
    from ledger.generate import generate as make

    items = make(events, anomalies, seed, faults=faults)
    out = sys.stdout
    for item in items:
        out.write(json.dumps(item["event"], separators=(",", ":")) + "\n")
    if labels is not None:
        rows = [{"event_id": i["event"]["event_id"], "label": i["label"]} for i in items if i["label"]]
        labels.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _send_with_progress(path: Path, quiet: bool) -> list[Any]:
    from gateway.services import ledger as service

    events = service.read_jsonl(path)
    with Progress(console=Console(stderr=True), disable=quiet) as progress:
        task = progress.add_task("sending", total=len(events))
        return service.send(events, _app(), on_sent=lambda _item: progress.advance(task))


def _wait_with_progress(sent: list[Any], quiet: bool, timeout: float) -> list[dict[str, Any]]:
    from celery.exceptions import TimeoutError as ResultTimeout

    from gateway.services import ledger as service
    from worker.errors import WorkersUnavailable

    with Progress(console=Console(stderr=True), disable=quiet) as progress:
        task = progress.add_task("waiting for results", total=len(sent))
        try:
            return service.wait(sent, timeout, on_done=lambda: progress.advance(task))
        except ResultTimeout:
            raise WorkersUnavailable(
                f"a result did not come within {timeout:g} s: is a worker consuming the 'ledger' queue? "
                "(agent status). The events sent stay queued and are checked when a worker takes them."
            ) from None


@ledger_app.command("submit")
def submit_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL file of events.")],
    wait: bool = typer.Option(False, "--wait", help="Wait for every result."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for each result."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Route and send events with the filter and priority rules; with --wait, exit 1 when any is rejected."""
    from gateway.services import ledger as service

    require_broker()
    sent = _send_with_progress(file, as_json)
    skipped = sum(1 for s in sent if s.skipped)
    if not wait:
        out = {"sent": len(sent) - skipped, "skipped": skipped}
        typer.echo(json.dumps(out) if as_json else f"sent {out['sent']} events, {skipped} skipped by filters")
        return
    results = _wait_with_progress(sent, as_json, timeout)
    outcomes = service.outcomes(results)
    if as_json:
        typer.echo(json.dumps({"results": results, "summary": _counts(outcomes)}, ensure_ascii=False))
    else:
        _print_outcomes(outcomes)
    if outcomes["rejected"]:
        raise typer.Exit(EXIT_FAILED)


def _counts(outcomes: dict[str, list[Any]]) -> dict[str, Any]:
    by_code = Counter(r["codes"][0] if r["codes"] else "unknown" for r in outcomes["rejected"])
    return {
        "accepted": len(outcomes["accepted"]),
        "rejected": dict(by_code.most_common()),
        "duplicates": len(outcomes["duplicates"]),
        "skipped": len(outcomes["skipped"]),
    }


def _print_outcomes(outcomes: dict[str, list[Any]]) -> None:
    """One table: accepted, rejected by deciding code, duplicates, skipped; then the first rejected events."""
    counts = _counts(outcomes)
    table = Table("outcome", "events")
    table.add_row("accepted", str(counts["accepted"]))
    for code, count in counts["rejected"].items():
        table.add_row(f"rejected: {code}", str(count), style="red")
    if not counts["rejected"]:
        table.add_row("rejected", "0")
    table.add_row("duplicates", str(counts["duplicates"]))
    table.add_row("skipped", str(counts["skipped"]))
    console = Console()
    console.print(table)
    rejected = outcomes["rejected"]
    if rejected:
        shown = ", ".join(f"{r['event_id']} ({', '.join(r['codes'])})" for r in rejected[:10])
        more = f" and {len(rejected) - 10} more" if len(rejected) > 10 else ""
        console.print(f"rejected: {shown}{more} (agent ledger show EVENT_ID)", highlight=False)


@ledger_app.command("quick-run")
def quick_run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL file of events.")],
    timeout: float = typer.Option(300.0, help="Seconds to wait for each result."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send, wait and summarise; exit 1 when any event is rejected (a CI gate)."""
    from gateway.services import ledger as service

    require_broker()
    started = time.perf_counter()
    sent = _send_with_progress(file, as_json)
    results = _wait_with_progress(sent, as_json, timeout)
    summary = service.summarise(results, started, _app())
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
    else:
        _print_summary(summary)
    if summary.by_status.get("rejected"):
        raise typer.Exit(EXIT_FAILED)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _print_summary(summary: Any) -> None:
    console = Console()
    console.print(
        f"events {summary.events}  success rate {summary.success_rate:.1%}  "
        f"run time {summary.run_time_s:.2f} s  peak worker memory {summary.peak_worker_memory_kb} KiB"
    )
    console.print(f"time to detect p50 {_ms(summary.ttd_p50_ms)}  p95 {_ms(summary.ttd_p95_ms)}")
    console.print(f"by status: {summary.by_status}")
    if summary.by_code:
        table = Table("code", "events")
        for code, count in sorted(summary.by_code.items(), key=lambda kv: -kv[1]):
            table.add_row(code, str(count))
        console.print(table)


@ledger_app.command("show")
def show(event_id: str = typer.Argument(..., help="The event's id.")) -> None:
    """Print the JSON snapshot of an event: the event, balances before and after, the result."""
    from gateway.services import ledger as service

    snapshot = service.get_snapshot(event_id)
    if snapshot is None:
        typer.secho(f"error: no snapshot for event {event_id!r}", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_USAGE)
    typer.echo(json.dumps(snapshot, indent=2, ensure_ascii=False))


@ledger_app.command("versions")
def versions(as_json: bool = JSON_OPTION) -> None:
    """Counts per api_version by status and code; flags a version that departs from the previous one."""
    from gateway.services import ledger as service

    rows = service.versions()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "api_version": r.api_version,
                        "statuses": r.statuses,
                        "codes": r.codes,
                        "rejection_rate": r.rejection_rate,
                        "departs": r.departs,
                        "why": r.why,
                    }
                    for r in rows
                ]
            )
        )
        return
    table = Table("api_version", "events", "rejected", "rejection rate", "top codes", "departs")
    for row in rows:
        top = ", ".join(f"{c} {n}" for c, n in sorted(row.codes.items(), key=lambda kv: -kv[1])[:3])
        table.add_row(
            row.api_version,
            str(row.total),
            str(row.statuses.get("rejected", 0)),
            f"{row.rejection_rate:.1%}",
            top,
            f"YES: {row.why}" if row.departs else "",
        )
    Console().print(table)
