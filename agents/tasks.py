"""Celery adapters of the agents package: parse, call the pure stage, persist through the live ports, return JSON."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import OperationalError

from agents import canvas, runner
from agents.errors import AgentError, ToolTransientError
from agents.models import WorkflowRequest
from worker import logging as fleet_logging
from worker.application import app
from worker.stores.agents_live import build_ports, start_run

log = logging.getLogger("fleet.agents")

RUNS = Counter("fleet_agent_runs_total", "Agent runs that reached a final status", ["status"])
STAGE_SECONDS = Histogram("fleet_agent_stage_seconds", "Duration of agent stages", ["stage"])
TOOL_CALLS = Counter("fleet_agent_tool_calls_total", "Tool calls by tool and outcome", ["tool", "status", "cached"])


class StageTask(Task):  # type: ignore[misc]
    """A stage that crashed (not a tool error: a bug or an outage) ends its run `failed`, never stuck."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Mark the run failed with the error."""
        run_id = (kwargs or {}).get("run_id")
        if run_id:
            log.error("stage %s failed: %s", self.name, exc, extra={"category": "agent", "run_id": run_id})
            runner.fail_run(run_id, f"{self.name}: {type(exc).__name__}: {exc}", build_ports())


# The database locked or unreachable is transient: every stage is idempotent (it reads the run by id and skips
# what is done), so it retries with exponential backoff (1, 2, 4 ... up to 30 s; about 2 min in all).
TRANSIENT: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "retry_kwargs": {"max_retries": 8},
}


def _json(record: Any) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json")
    return data


@app.task(name="agents.run_workflow", bind=True, base=StageTask, **TRANSIENT)
def run_workflow(self: Task, request: dict[str, Any]) -> dict[str, Any]:
    """Record the run (the task id is the run id) and replace this task with the four-stage pipeline."""
    parsed = WorkflowRequest.model_validate(request)
    record, created = start_run(self.request.id, parsed)
    fleet_logging.bind(run_id=record.run_id, category="agent")
    if not created or record.status != "pending":
        return _json(record)
    sig = canvas.pipeline(record.run_id, record.queue, record.priority)
    build_ports().store.add_task_ids(record.run_id, [*canvas.task_ids(sig), self.request.id])
    raise self.replace(sig)


@app.task(name="agents.analyze", bind=True, base=StageTask, **TRANSIENT)
def analyze(self: Task, run_id: str) -> dict[str, Any]:
    """Sena: plan the request."""
    with STAGE_SECONDS.labels("analyze").time(), fleet_logging.bound(run_id=run_id):
        return _json(runner.analyze(run_id, build_ports(), self.request.id))


@app.task(name="agents.gate", bind=True, base=StageTask, **TRANSIENT)
def gate(self: Task, run_id: str) -> dict[str, Any]:
    """Lubit: approve, reject or hold the plan."""
    with STAGE_SECONDS.labels("gate").time(), fleet_logging.bound(run_id=run_id):
        record = runner.gate(run_id, build_ports(), self.request.id)
    if record.finished:
        RUNS.labels(record.status).inc()
    return _json(record)


@app.task(name="agents.execute", bind=True, base=StageTask, **TRANSIENT)
def execute(self: Task, run_id: str) -> dict[str, Any]:
    """GitCode: replace this task with one group per dependency level (verify follows from the chain)."""
    ports = build_ports()
    record, levels = runner.begin_execute(run_id, ports, self.request.id)
    if levels is None:
        return _json(record)
    sig = canvas.execution(run_id, levels, record.queue, record.priority, ports.config.subtask_time_limit_s)
    ports.store.add_task_ids(run_id, list(canvas.task_ids(sig)))
    raise self.replace(sig)


@app.task(name="agents.run_subtask", bind=True, base=StageTask, max_retries=None, **TRANSIENT)
def run_subtask(self: Task, previous: Any = None, *, run_id: str, subtask_id: str) -> dict[str, Any]:
    """Run one subtask; transient tool errors retry with exponential backoff, then the subtask fails."""
    ports = build_ports()
    with fleet_logging.bound(run_id=run_id, subtask_id=subtask_id):
        try:
            result = runner.run_subtask(run_id, subtask_id, ports, _outputs(previous))
        except ToolTransientError as exc:
            if self.request.retries < ports.config.tool_retries:
                raise self.retry(exc=exc, countdown=ports.config.retry_backoff_s * 2**self.request.retries) from None
            result = runner.fail_subtask(
                run_id,
                subtask_id,
                f"{exc} (after {self.request.retries + 1} attempts)",
                self.request.retries + 1,
                ports,
            )
        except SoftTimeLimitExceeded:
            limit = ports.config.subtask_time_limit_s
            result = runner.fail_subtask(
                run_id, subtask_id, f"timed out after {limit} s", self.request.retries + 1, ports
            )
    TOOL_CALLS.labels(result.tool, result.status, str(result.cached).lower()).inc()
    return {"subtask_id": result.subtask_id, "status": result.status, "output": result.output}


def _outputs(previous: Any) -> dict[str, dict[str, Any]]:
    """The outputs a level passed on (one result, or a list of them), by subtask id."""
    items = previous if isinstance(previous, list) else [previous] if isinstance(previous, dict) else []
    return {i["subtask_id"]: i["output"] for i in items if isinstance(i, dict) and i.get("status") == "succeeded"}


@app.task(name="agents.verify", bind=True, base=StageTask, **TRANSIENT)
def verify(self: Task, run_id: str) -> dict[str, Any]:
    """RUNE: check the run; returns the final run record (the producer's result)."""
    with STAGE_SECONDS.labels("verify").time(), fleet_logging.bound(run_id=run_id):
        record = runner.verify(run_id, build_ports(), self.request.id)
    if record.finished:
        RUNS.labels(record.status).inc()
    return _json(record)


__all__ = ["AgentError", "analyze", "execute", "gate", "run_subtask", "run_workflow", "verify"]
