"""Celery signal handlers: JSON logging, correlation ids and task context on every line."""

from __future__ import annotations

import gc
import logging
import uuid
from typing import Any

from celery import signals

from worker import logging as fleet_logging
from worker import ownership
from worker.constants import CORRELATION_HEADER

log = logging.getLogger("fleet.worker")


def _setup_logging(**_: Any) -> None:
    _configure("celery")


_role = "celery"


def _configure(role: str) -> None:
    global _role
    _role = role
    fleet_logging.configure_process(role)


def _child_logging(**_: Any) -> None:
    # A forked pool process has no listener thread: start its own, on a file of its own (`<worker>-<index>`).
    fleet_logging.configure_process(fleet_logging.process_role(_role))
    # Connected now, after every module's handlers: it runs last, and writes their lines too.
    signals.worker_process_shutdown.connect(_child_exit_logging, weak=False)


def _child_exit_logging(**_: Any) -> None:
    # A pool process exits with os._exit (no atexit): write what its writer thread has not written yet.
    fleet_logging.flush()


def _worker_logging(sender: str, **_: Any) -> None:
    _configure(f"worker-{sender.split('@')[0]}")
    ownership.set_node_name(sender)  # its consumers show as `<node>#<pid>.<n>` in agent status


def _beat_logging(**_: Any) -> None:
    _configure("beat")


# Objects a young collection may gather before the cyclic garbage collector runs (Python's default: 700).
# A ledger batch allocates millions of short-lived dicts and lists: every 700 of them started a
# collection, and the older generations' collections walked all that had survived (the decoded message).
GC_YOUNG_THRESHOLD = 50_000


def _freeze_startup_objects(**_: Any) -> None:
    """Move the main process's start-up objects out of the garbage collector's reach.

    The prefork pool runs a full `gc.collect()` in the main process before it forks each replacement
    process; over the imported libraries' objects that is long enough for a one-process worker to
    run nothing meanwhile. Frozen objects are never freed, as module-level objects never are anyway.
    """
    gc.freeze()


def _tune_child_gc(**_: Any) -> None:
    """In each pool process: freeze what it inherited, and collect young objects less often.

    A 5,000-event ledger batch ran ~40 % faster in-process (docs/PERFORMANCE.md); the memory held
    by uncollected cycles is bounded by GC_YOUNG_THRESHOLD objects (a few MB).
    """
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _propagate_correlation(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Every message carries a correlation id: the current task's, or a new one."""
    if headers is None or headers.get(CORRELATION_HEADER):
        return
    bound = fleet_logging.current().get("correlation_id")
    headers[CORRELATION_HEADER] = bound or str(uuid.uuid4())


def correlation_of(request: Any) -> str:
    """The correlation id a task was sent with, its own id when the producer set none."""
    return str(getattr(request, CORRELATION_HEADER, None) or request.id)


def _bind_task_context(task: Any = None, task_id: str | None = None, **_: Any) -> None:
    fleet_logging.clear()
    if task is None:
        return
    request = task.request
    fleet_logging.bind(
        task_id=task_id,
        task_name=task.name,
        queue=(request.delivery_info or {}).get("routing_key"),
        correlation_id=correlation_of(request),
    )


def _clear_task_context(**_: Any) -> None:
    fleet_logging.clear()


def _log_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    """Celery's own retry line is not written (its logger is at WARNING, see worker.logging): the fleet's."""
    name, task_id = getattr(sender, "name", None), getattr(request, "id", None)
    log.info("task %s[%s] retry: %s", name, task_id, reason, extra={"task_id": task_id, "task_name": name})


def _log_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    log.error(
        "task failed: %s: %s",
        type(exception).__name__ if exception else "unknown",
        exception,
        extra={"task_id": task_id, "task_name": getattr(sender, "name", None)},
    )


def install() -> None:
    """Connect the handlers above (create_app calls it; connecting one twice connects it once)."""
    # Connecting setup_logging stops Celery from configuring logging itself.
    signals.setup_logging.connect(_setup_logging, weak=False)
    signals.worker_process_init.connect(_child_logging, weak=False)
    signals.celeryd_after_setup.connect(_worker_logging, weak=False)
    signals.beat_init.connect(_beat_logging, weak=False)
    signals.worker_ready.connect(_freeze_startup_objects, weak=False)
    signals.worker_process_init.connect(_tune_child_gc, weak=False)
    signals.before_task_publish.connect(_propagate_correlation, weak=False)
    signals.task_prerun.connect(_bind_task_context, weak=False)
    signals.task_postrun.connect(_clear_task_context, weak=False)
    signals.task_retry.connect(_log_retry, weak=False)
    signals.task_failure.connect(_log_failure, weak=False)
