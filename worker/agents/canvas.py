"""The workflow's canvas: signatures only, no I/O. `analyze -> gate -> execute -> verify`, and the execute fan-out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from celery import chain, group, signature
from celery.canvas import Signature, _chain, _chord

STAGE_TASKS = ("agents.analyze", "agents.gate", "agents.execute", "agents.verify")
SUBTASK_TASK = "agents.run_subtask"
BARRIER_TASK = "celery.accumulate"
# Seconds between the soft limit (the tool is interrupted, the subtask fails) and the hard kill.
HARD_LIMIT_GRACE_S = 5


def _stage(name: str, run_id: str, queue: str, priority: int, app: Any) -> Signature:
    options = {"queue": queue, "priority": priority, "task_id": str(uuid.uuid4())}
    return signature(name, kwargs={"run_id": run_id}, immutable=True, app=app, **options)


# The first stage to send again for a run that stopped moving in a status (each stage skips what is done).
RESUME_AT = {"pending": 0, "analyzing": 0, "gated": 2, "executing": 2, "verifying": 3}


def pipeline(run_id: str, queue: str, priority: int, app: Any = None, status: str = "pending") -> Signature:
    """The whole workflow (or, from `status`, what remains of it): the stages in a chain, each reading the run
    context by id and each with a task id of its own, so monitors (Flower) show agents.run_workflow under the
    run id; agents.verify stores the final run record as the run id's result too (the producer's)."""
    # Each signature is bound to the app that sends it: an unbound one is sent by whichever app was created last.
    names = STAGE_TASKS[RESUME_AT[status] :]
    return chain(*(_stage(name, run_id, queue, priority, app) for name in names))


def resume(run_id: str, queue: str, priority: int, app: Any = None) -> Signature:
    """After a person approved a held plan: execute and verify, without the analyst or the gatekeeper."""
    return chain(*(_stage(name, run_id, queue, priority, app) for name in STAGE_TASKS[2:]))


def execution(
    run_id: str,
    levels: Sequence[Sequence[str]],
    queue: str,
    priority: int,
    time_limit_s: int,
    then: Sequence[Signature] = (),
    app: Any = None,
    specs: Mapping[str, dict[str, Any]] | None = None,
) -> Signature:
    """One group per dependency level, chained (a chord per level): a level starts when the one before it
    finished, and its subtasks receive that level's results as their first argument. `then` (the rest of the
    pipeline, that is verify) becomes the last level's chord body; without it a barrier takes that place.
    `specs` (the approved subtasks by id) go into the messages; a subtask runs only when its spec is the stored
    plan's (agents/subtask.py)."""
    steps = []
    for index, level in enumerate(levels):
        members = [
            signature(
                SUBTASK_TASK,
                kwargs={"run_id": run_id, "subtask_id": subtask_id, **_spec(specs, subtask_id)},
                queue=queue,
                priority=priority,
                immutable=index == 0,
                soft_time_limit=time_limit_s,
                time_limit=time_limit_s + HARD_LIMIT_GRACE_S,
                task_id=str(uuid.uuid4()),
                app=app,
            )
            for subtask_id in level
        ]
        steps.append(group(members))
    if then:
        return chain(*steps, *then)
    # The last level's barrier, on our queue: left to Task.replace, it would be a celery.accumulate routed to
    # the default queue, which a worker serving only another agents queue never reads.
    options = {"queue": queue, "priority": priority, "task_id": str(uuid.uuid4())}
    barrier = signature(BARRIER_TASK, kwargs={"index": 0}, app=app, **options)
    return chain(*steps, barrier)


def _spec(specs: Mapping[str, dict[str, Any]] | None, subtask_id: str) -> dict[str, Any]:
    return {"spec": specs[subtask_id]} if specs and subtask_id in specs else {}


def task_ids(canvas: Any) -> Iterator[str]:
    """Every task id set on the signatures of a canvas (to remember for cancel)."""
    if isinstance(canvas, _chord):
        for member in canvas.tasks:
            yield from task_ids(member)
        yield from task_ids(canvas.body)
    elif isinstance(canvas, _chain | group):
        for member in canvas.tasks:
            yield from task_ids(member)
    elif isinstance(canvas, Signature) and canvas.options.get("task_id"):
        yield canvas.options["task_id"]
