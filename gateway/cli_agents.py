"""`agent` commands of the agents domain; registered by gateway.cli."""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway.cli_errors import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, require_broker

PROFILES = ("local", "openai")
console = Console()
tool_app = typer.Typer(help="The agents' tools: list them, try one.", no_args_is_help=True)


def _emit(data: Any, as_json: bool) -> bool:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return as_json


def _known_profile(value: str) -> str:
    # The profiles agents.profiles.make_profile knows: caught here rather than by the worker's analyst.
    if value not in PROFILES:
        raise typer.BadParameter(f"unknown profile {value!r}; known: {', '.join(PROFILES)}")
    return value


def _options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--option takes key=value, got {pair!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def show_record(record: dict[str, Any]) -> None:
    """The answer, then the stages with timings and verdicts."""
    colour = {"succeeded": "green", "awaiting_approval": "yellow"}.get(record["status"], "red")
    console.print(f"run [bold]{record['run_id']}[/] [{colour}]{record['status']}[/]")
    if record.get("output") and record["output"].get("answer"):
        console.print(record["output"]["answer"], highlight=False)
    if record.get("error"):
        console.print(f"[red]{record['error']}[/]", highlight=False)
    table = Table("stage", "status", "ms", "notes")
    for stage in record["stages"]:
        table.add_row(stage["stage"], stage["status"], f"{stage['duration_ms']:.1f}", _note(stage, record))
    console.print(table)


def _note(stage: dict[str, Any], record: dict[str, Any]) -> str:
    output = stage["output"]
    if stage["stage"] == "analyze" and "plan" in output:
        plan = output["plan"]
        tokens = stage["usage"]["prompt_tokens"] + stage["usage"]["completion_tokens"]
        return f"{plan['intent']}: {', '.join(plan['tools']) or 'no tool'}; {tokens} tokens"
    if stage["stage"] == "gate" and "verdict" in output:
        verdict = output["verdict"]
        return f"{verdict['decision']} (priority {verdict['priority']}): {'; '.join(verdict['reasons'])[:80]}"
    if stage["stage"] == "execute":
        return ", ".join(
            f"{r['subtask_id']} {r['tool']} {r['status']}{' (cached)' if r['cached'] else ''}"
            for r in record["subtasks"]
        )
    if stage["stage"] == "verify" and "verification" in output:
        return " ".join(f"{c['name']}={'pass' if c['passed'] else 'FAIL'}" for c in output["verification"]["checks"])
    return str(output.get("error", ""))


def _follow(run_id: str, timeout: float) -> None:
    from gateway.services import agents as service

    with console.status("waiting for a worker...") as status:
        for _event_id, event in service.progress(run_id, timeout_s=timeout):
            kind = event.get("type")
            if kind == "stage_started":
                status.update(f"{event['stage']}...")
            elif kind == "stage_finished":
                console.print(
                    f"  {event['stage']:<8} {event['status']:<10} {event['duration_ms']:>9.1f} ms", highlight=False
                )
            elif kind == "subtask_finished":
                cached = " (cache hit)" if event.get("cached") else ""
                console.print(f"    {event['subtask_id']} {event['tool']} {event['status']}{cached}", highlight=False)


def run(
    text: str = typer.Argument(..., help="The request, in Korean or English."),
    mode: str = typer.Option("planner", help="planner (all four stages) or plan_only (analyze and gate)."),
    profile: str = typer.Option("local", callback=_known_profile, help="Model profile: local or openai."),
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="key=value request option (JSON value).")
    ] = None,
    idempotency_key: str = typer.Option(None, help="A repeated request with this key maps to the same run."),
    wait: bool = typer.Option(True, help="Wait for the run and show live progress."),
    timeout: float = typer.Option(120.0, min=0.0, help="Seconds to wait in all, live view included."),
    as_json: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
) -> None:
    """Run a workflow: prints the answer, the stages with timings and the verdicts."""
    from agents.models import WorkflowRequest
    from gateway.services import agents as service

    request = WorkflowRequest(
        input=text, mode=mode, profile=profile, options=_options(option or []), idempotency_key=idempotency_key
    )
    require_broker()
    run_id = service.submit(request)
    if not wait:
        if not _emit({"run_id": run_id, "status": "pending"}, as_json):
            typer.echo(run_id)
        return
    deadline = time.monotonic() + timeout
    if not as_json:
        _follow(run_id, timeout)
    record = service.wait_for_run(run_id, max(0.0, deadline - time.monotonic()))
    if record["status"] == "pending":
        raise typer.Exit(_withdraw(run_id, request, timeout))
    if not _emit(record, as_json):
        show_record(record)
    if record["status"] not in service.RESTING:
        typer.secho(f"run {run_id} is still {record['status']} after {timeout:g} s and goes on: "
                    f"'agent status {run_id}' shows it, 'agent cancel {run_id}' stops it", err=True)  # fmt: skip
    raise typer.Exit(EXIT_OK if record["status"] in {"succeeded", "awaiting_approval"} else EXIT_FAILED)


def _withdraw(run_id: str, request: Any, timeout: float) -> int:
    """No worker started the run in time: cancel it rather than let it run later unnoticed."""
    from gateway.services import agents as service

    if service.withdraw(run_id, request, actor="cli") is None:  # a worker took it just now
        typer.secho(f"run {run_id} started only now and goes on: 'agent status {run_id}' shows it", err=True)
        return EXIT_FAILED
    typer.secho(
        f"error: no worker started run {run_id} within {timeout:g} s, so it is cancelled and will not run: "
        f"is a worker consuming the '{request.options.get('queue') or 'agents'}' queue? (agent status)",
        err=True,
        fg=typer.colors.RED,
    )
    return EXIT_UNAVAILABLE


def chat(
    profile: str = typer.Option("local", callback=_known_profile, help="Model profile."),
    timeout: float = typer.Option(120.0, min=0.0, help="Seconds to wait for each answer."),
) -> None:
    """One conversation, a request per line: each sees the earlier turns ("now double it"). `/new` starts another
    conversation, `/history` shows this one's turns; an empty line or Ctrl-D ends."""
    from agents.models import WorkflowRequest
    from gateway.services import agents as service
    from gateway.services import conversations

    require_broker()
    conversation = conversations.create("agent chat")["conversation_id"]
    console.print(f"conversation {conversation} (/new starts another, /history shows it)", highlight=False)
    for line in (
        sys.stdin if not sys.stdin.isatty() else iter(lambda: typer.prompt("you", default="", show_default=False), "")
    ):
        text = line.strip()
        if not text:
            break
        if text in {"/new", "/history"}:
            conversation = _chat_command(text, conversation)
            continue
        request = WorkflowRequest(input=text, profile=profile, conversation_id=conversation)
        run_id = service.submit(request)
        record = service.wait_for_run(run_id, timeout)
        if record["status"] == "pending":
            raise typer.Exit(_withdraw(run_id, request, timeout))
        answer = (record.get("output") or {}).get("answer") or record.get("error") or record["status"]
        console.print(f"[bold]agent[/] ({record['status']}): {answer}", highlight=False)


def _chat_command(command: str, conversation: str) -> str:
    """`/new`: a fresh conversation; `/history`: this one's turns. The conversation to go on with."""
    from gateway.services import conversations

    if command == "/new":
        conversation = conversations.create("agent chat")["conversation_id"]
        console.print(f"conversation {conversation}", highlight=False)
        return conversation
    turns = conversations.get(conversation)["turns"]
    for index, turn in enumerate(turns, start=1):
        console.print(f"{index}. you: {turn['input']}\n   agent ({turn['status']}): {turn['answer'] or turn['error']}",
                      highlight=False)  # fmt: skip
    if not turns:
        console.print("no turns yet", highlight=False)
    return conversation


def batch(
    input_path: Annotated[Path, typer.Option("--input", exists=True, help="One request per line.")],
    output_path: Annotated[Path, typer.Option("--output", help="JSON lines, one result per request.")],
    parallel: int = typer.Option(4, min=1, max=64, help="Runs in flight at once."),
    profile: str = typer.Option("local", callback=_known_profile, help="Model profile."),
) -> None:
    """Run every line of a file as a workflow, with a progress bar."""
    import time

    from gateway.services import agents as service

    require_broker()
    try:
        text = input_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(
            f"{input_path} is not UTF-8 text: one request per line", param_hint="--input"
        ) from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]

    def one(text: str) -> dict[str, Any]:
        started = time.perf_counter()
        record = service.run(text, profile=profile)
        return {"input": text, "run_id": record["run_id"], "status": record["status"], "error": record.get("error"),
                "answer": (record.get("output") or {}).get("answer"), "latency_ms": round((time.perf_counter() - started) * 1000, 1)}  # fmt: skip

    results: list[dict[str, Any]] = []
    # Opened first: an output that cannot be written is said before any run, not after all of them.
    with output_path.open("w", encoding="utf-8") as out:
        with Progress(console=console) as progress, ThreadPoolExecutor(parallel) as pool:
            bar = progress.add_task("runs", total=len(lines))
            for future in as_completed([pool.submit(one, text) for text in lines]):
                results.append(future.result())
                progress.advance(bar)
        order = {text: i for i, text in enumerate(lines)}
        for result in sorted(results, key=lambda r: order[r["input"]]):
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
    succeeded = sum(1 for r in results if r["status"] == "succeeded")
    console.print(f"{succeeded}/{len(results)} succeeded; results in {output_path}")
    raise typer.Exit(EXIT_OK if succeeded == len(results) else EXIT_FAILED)


def _act(action: str, run_id: str, as_json: bool, **kwargs: Any) -> None:
    from gateway.services import agents as service

    record = getattr(service, action)(run_id, **kwargs)
    if not _emit(record, as_json):
        show_record(record)


def cancel(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Cancel a run: queued and running tasks are revoked, partial results stay."""
    _act("cancel", run_id, as_json, actor="cli")


def approve(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Approve a run awaiting approval: it executes without planning or gating again."""
    _act("approve", run_id, as_json, actor="cli")


def reject(
    run_id: str, reason: str = typer.Option("", help="Why."), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Reject a run awaiting approval."""
    _act("reject", run_id, as_json, actor="cli", reason=reason)


def replay(
    run_id: str,
    from_stage: str = typer.Option("analyze", help="Reuse the stored outputs of the stages before this one."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-run a finished run from its snapshot and print the diff (exit 1 when it differs)."""
    from gateway.services import agents as service

    result = service.replay(run_id, from_stage)
    if not _emit(result, as_json):
        console.print(f"replay of {run_id} from {from_stage}: {'identical' if result['identical'] else 'DIFFERENT'}")
        for line in result["diff"] + result["config_diff"]:
            console.print(line, highlight=False)
    raise typer.Exit(EXIT_OK if result["identical"] else EXIT_FAILED)


@tool_app.command("list")
def tool_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every tool with its version, side-effect flag and schema hash."""
    from gateway.services import agents as service

    tools = service.list_tools()
    if not _emit(tools, as_json):
        table = Table("tool", "side effect", "schema hash", "description")
        for t in tools:
            effect = ("yes, approved by a person" if t.get("needs_approval") else "yes") if t["side_effect"] else "no"
            origin = f"[{t['origin']}] " if t.get("origin") else ""
            table.add_row(f"{t['name']}:{t['version']}", effect, t["schema_hash"], origin + t["description"])
        console.print(table)


@tool_app.command("test")
def tool_test(name: str, input_json: str = typer.Option(..., "--input", help="The arguments as JSON.")) -> None:
    """Call one tool with the given arguments and print its output."""
    from gateway.services import agents as service

    try:
        args = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--input is not JSON: {exc.msg}") from None
    _emit(service.test_tool(name, args), True)


def evaluate(
    samples: Annotated[Path, typer.Option(help="Folder with inputs/ and expected/.")] = Path("samples/eval"),
    profile: str = typer.Option("local", callback=_known_profile, help="Model profile."),
    parallel: int = typer.Option(4, min=1, max=64, help="Runs in flight at once."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the evaluation samples through the fleet and print the metrics."""
    from gateway.services import agents as service

    require_broker()
    summary = service.evaluate(samples, profile=profile, parallel=parallel)
    if not _emit(summary, as_json):
        table = Table("metric", "value")
        for key, value in summary["metrics"].items():
            table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
        console.print(table)
        console.print(f"per-sample results and summary in {summary['results_dir']}")


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `agent` CLI."""
    app.command("run")(run)
    app.command("chat")(chat)
    app.command("batch")(batch)
    app.command("cancel")(cancel)
    app.command("approve")(approve)
    app.command("reject")(reject)
    app.command("replay")(replay)
    app.command("eval")(evaluate)
    app.add_typer(tool_app, name="tool")


def print_run_status(run_id: str, as_json: bool) -> int:
    """Print one workflow run (`agent status RUN_ID`); the exit code: 0 succeeded or resting, 1 otherwise."""
    from gateway.services import agents as service

    record = service.run_status(run_id)  # an unknown id: RunNotFound, exit 2 (gateway.cli_errors)
    if not _emit(record, as_json):
        show_record(record)
    return EXIT_OK if record["status"] not in {"failed", "rejected", "cancelled"} else EXIT_FAILED
