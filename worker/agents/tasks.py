"""Celery adapters of the agents package: parse, call the pure stage, persist through the live ports, return JSON."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, signature, states
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from agents import runner, subtask
from agents.errors import AgentError, RequestInvalid, SubtaskRefused, ToolTransientError
from agents.models import TERMINAL_STATUSES, WorkflowRequest
from worker import logging as fleet_logging
from worker import otel
from worker.agents import approval_notify, canvas
from worker.agents.ports import build_ports, start_run
from worker.application import get_app, task
from worker.metrics import AGENT_REQUESTS, AGENT_STAGE_DURATION, AGENT_TOKENS, AGENT_TOOL_CALLS

log = logging.getLogger("fleet.agents")


class StageTask(Task):  # type: ignore[misc]
    """A stage that crashed (not a tool error: a bug or an outage) ends its run `failed`, never stuck."""

    def on_replace(self, sig: Any) -> Any:
        """Tell monitors this task is done: it handed its work to `sig`. Celery sends no event for a replaced
        task, so Flower showed every run_workflow and execute STARTED (with a Terminate button) for ever."""
        handed = len(list(canvas.task_ids(sig)))
        self.send_event("task-succeeded", result=f"'replaced by {handed} tasks'", runtime=0.0)
        return super().on_replace(sig)

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


@task(name="agents.run_workflow", bind=True, base=StageTask, **TRANSIENT)
def run_workflow(self: Task, request: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    """Record the run (the task id is the run id; `owner`: the submitting API key's id) and replace this task
    with the four-stage pipeline."""
    try:
        parsed = WorkflowRequest.model_validate(request)
    except ValidationError as exc:
        # From any producer: refused before anything is recorded or sent (an options.queue could name any key).
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors())
        log.warning("run %s refused: %s", self.request.id, reason, extra={"category": "agent"})
        raise RequestInvalid(reason) from None
    record, created = start_run(self.request.id, parsed, owner, trace_id=otel.trace_id())
    fleet_logging.bind(run_id=record.run_id, category="agent")
    otel.annotate(**{"fleet.run_id": record.run_id, "fleet.workflow.mode": parsed.mode})
    # Not created (the idempotency key's run), or created by an earlier delivery of this very message that
    # then moved on: the record. Still pending after an earlier delivery: it died before sending the stages.
    if record.status != "pending" or (not created and record.run_id != self.request.id):
        return _json(record)
    sig = canvas.pipeline(record.run_id, record.queue, record.priority, app=get_app())
    build_ports().store.add_task_ids(record.run_id, [*canvas.task_ids(sig), self.request.id])
    raise self.replace(sig)


# Intermediate stages pass nothing on (the next stage reads the run context) and nobody waits on their
# results: storing them, and a STARTED state, would cost two result-backend writes per stage for nothing.
INTERMEDIATE = {"bind": True, "base": StageTask, "ignore_result": True, "track_started": False, **TRANSIENT}


@task(name="agents.analyze", **INTERMEDIATE)
def analyze(self: Task, run_id: str) -> dict[str, Any]:
    """Sena: plan the request; the stage report (run status and plan)."""
    with AGENT_STAGE_DURATION.labels("analyze").time(), fleet_logging.bound(run_id=run_id):
        result = runner.analyze(run_id, build_ports(), self.request.id)
    usage = result.get("usage", {})
    for kind in ("prompt", "completion"):
        AGENT_TOKENS.labels("analyze", kind).inc(usage.get(f"{kind}_tokens", 0))
    if otel.enabled():
        _annotate_model_call(run_id, usage)
    return result


def _annotate_model_call(run_id: str, usage: dict[str, Any]) -> None:
    # The analyst's model call, in the GenAI semantic conventions (model from the run's profile: one read, traced only).
    ports = build_ports()
    described = ports.profiles(ports.store.get_run(run_id).request.profile).describe()
    otel.annotate(**{
        "fleet.run_id": run_id, "fleet.stage": "analyze", "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": described.get("provider"), "gen_ai.request.model": described.get("model"),
        "gen_ai.usage.input_tokens": usage.get("prompt_tokens", 0),
        "gen_ai.usage.output_tokens": usage.get("completion_tokens", 0),
    })  # fmt: skip


@task(name="agents.gate", **INTERMEDIATE)
def gate(self: Task, run_id: str) -> dict[str, Any]:
    """Lubit: approve, reject or hold the plan; the stage report (run status and verdict)."""
    with AGENT_STAGE_DURATION.labels("gate").time(), fleet_logging.bound(run_id=run_id):
        ports = build_ports()
        result = runner.gate(run_id, ports, self.request.id)
        if result["status"] == "awaiting_approval":
            record = ports.store.get_run(run_id)
            approval_notify.notify(run_id, record.request.input, list(runner.verdict_of(record).reasons))
    otel.annotate(**{"fleet.run_id": run_id, "fleet.stage": "gate"})
    if result["status"] in TERMINAL_STATUSES:
        AGENT_REQUESTS.labels(result.get("mode", "planner"), result["status"]).inc()
    return result


@task(name="agents.execute", **INTERMEDIATE)
def execute(self: Task, run_id: str) -> dict[str, Any]:
    """GitCode: replace this task with one group per dependency level (verify follows from the chain)."""
    ports = build_ports()
    otel.annotate(**{"fleet.run_id": run_id, "fleet.stage": "execute"})
    record, levels = runner.begin_execute(run_id, ports, self.request.id)
    if levels is None:
        return runner.report(run_id, "execute", record.status)
    # The rest of the pipeline (verify) becomes the last level's chord body, one task hop less than letting
    # replace() append it after a barrier; the chain is then emptied so replace() does not append it twice.
    rest = [signature(step, app=get_app()) for step in reversed(self.request.chain or [])]
    limit = ports.config.subtask_time_limit_s
    specs = {s.id: s.model_dump(mode="json") for s in runner.plan_of(record).subtasks}
    sig = canvas.execution(run_id, levels, record.queue, record.priority, limit, rest, app=get_app(), specs=specs)
    self.request.chain = None
    ports.store.add_task_ids(run_id, list(canvas.task_ids(sig)))
    raise self.replace(sig)


# Nobody waits on a subtask's STARTED state (progress is the run's stream): one result-backend write less.
@task(name="agents.run_subtask", bind=True, base=StageTask, max_retries=None, track_started=False, **TRANSIENT)
def run_subtask(
    self: Task, previous: Any = None, *, run_id: str, subtask_id: str, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one subtask of the approved plan (`previous`, the level before's results, is not trusted: outputs come
    from the run context); transient tool errors retry with exponential backoff, then the subtask fails."""
    ports = build_ports()
    otel.annotate(**{"fleet.run_id": run_id, "fleet.subtask_id": subtask_id})
    with fleet_logging.bound(run_id=run_id, subtask_id=subtask_id), otel.span("agent.tool_call") as call:
        try:
            result = subtask.run(run_id, subtask_id, ports, spec)
        except SubtaskRefused as exc:
            log.warning("%s", exc, extra={"category": "security", "run_id": run_id, "subtask_id": subtask_id})
            return {"subtask_id": subtask_id, "status": "refused", "output": None, "error": str(exc)}
        except ToolTransientError as exc:
            if self.request.retries < ports.config.tool_retries:
                raise self.retry(exc=exc, countdown=ports.config.retry_backoff_s * 2**self.request.retries) from None
            attempts = self.request.retries + 1
            result = subtask.fail(run_id, subtask_id, f"{exc} (after {attempts} attempts)", attempts, ports)
        except SoftTimeLimitExceeded:
            limit = ports.config.subtask_time_limit_s
            result = subtask.fail(run_id, subtask_id, f"timed out after {limit} s", self.request.retries + 1, ports)
        if call is not None:  # the GenAI conventions' tool call (gen_ai.tool.name), set before the span ends
            call.set_attributes({"fleet.run_id": run_id, "gen_ai.operation.name": "execute_tool",
                                 "gen_ai.tool.name": result.tool, "fleet.tool.version": str(result.version),
                                 "fleet.tool.status": result.status})  # fmt: skip
    AGENT_TOOL_CALLS.labels(f"{result.tool}:{result.version}", "cached" if result.cached else result.status).inc()
    if result.status != "succeeded":
        extra = {
            "category": "agent",
            "run_id": run_id,
            "subtask_id": subtask_id,
            "tool": f"{result.tool}:{result.version}",
        }
        log.warning(
            "subtask %s %s: %s", subtask_id, result.status, result.error, extra={**extra, "attempts": result.attempts}
        )
    return {"subtask_id": result.subtask_id, "status": result.status, "output": result.output}


@task(name="agents.verify", bind=True, base=StageTask, **TRANSIENT)
def verify(self: Task, run_id: str) -> dict[str, Any]:
    """RUNE: check the run; returns the run record, also stored as the result of the run id (the producer's)."""
    with AGENT_STAGE_DURATION.labels("verify").time(), fleet_logging.bound(run_id=run_id):
        record = runner.verify(run_id, build_ports(), self.request.id)
    otel.annotate(**{"fleet.run_id": run_id, "fleet.stage": "verify", "fleet.run.status": record.status})
    if record.status in runner.IN_FLIGHT:
        # Sent before the run was ready (a duplicate): nothing for the producer, whose id (the run id) resolves
        # only when the run rests; this task ends as a stage report.
        log.info("verify of run %s arrived before the run was ready (a duplicate): ignored", run_id)
        return runner.report(run_id, "verify", record.status)
    if record.finished:
        AGENT_REQUESTS.labels(record.request.mode, record.status).inc()
        level = logging.INFO if record.status == "succeeded" else logging.WARNING
        log.log(
            level,
            "run %s %s",
            run_id,
            record.status,
            extra={"category": "agent", "run_id": run_id, "error": record.error},
        )
    result = _json(record)
    # The producer holds the run id (run_workflow's task id, which replaced itself): the record is its result.
    # A stored SUCCESS or REVOKED (a cancel) is final (worker/backend.py): a late duplicate changes nothing.
    self.backend.store_result(run_id, result, states.SUCCESS)
    return result


@task(name="agents.sweep", ignore_result=True)
def sweep() -> dict[str, list[str]]:
    """Resume runs that stopped moving (a lost message, a worker killed at a bad moment), fail the hopeless, end
    held runs whose approval expired."""
    ports = build_ports()
    done: dict[str, list[str]] = {"resume": [], "failed": []}
    for record, action in runner.sweep(ports, runner.utcnow()):
        done[action].append(record.run_id)
        extra = {"category": "agent", "run_id": record.run_id, "status": record.status}
        if action == "failed":
            log.error("run %s failed: stalled in %s, resumes used up", record.run_id, record.status, extra=extra)
            continue
        sig = canvas.pipeline(record.run_id, record.queue, record.priority, app=get_app(), status=record.status)
        ports.store.add_task_ids(record.run_id, list(canvas.task_ids(sig)))
        sig.apply_async()
        log.warning("run %s resumed: no progress in %s", record.run_id, record.status, extra=extra)
    done["expired"] = []
    for record in runner.expire_holds(ports, runner.utcnow()):
        done["expired"].append(record.run_id)
        log.warning("run %s: approval expired", record.run_id, extra={"category": "agent", "run_id": record.run_id})
    return done


__all__ = ["AgentError", "analyze", "execute", "gate", "run_subtask", "run_workflow", "sweep", "verify"]
