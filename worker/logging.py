"""The fleet's logging, configured per process: JSON lines with task context and masked secrets, to stderr and a
rotating file, written off the task's thread. The jobs live beside it: worker/log_context.py (bound fields,
categories), worker/log_format.py (filters, the JSON line), worker/log_writer.py (the writer thread).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from pathlib import Path
from typing import Any

from celery.utils.log import current_process_index
from pydantic import BaseModel, ConfigDict, Field

from config_sections import validate_section
from worker.errors import SettingsError
from worker.log_context import ContextFilter, bind, bound, clear, current
from worker.log_format import MaskingFilter, TaskArgumentsFilter, json_formatter
from worker.log_writer import Listener
from worker.settings import get_settings

# What the fleet's modules call through `fleet_logging` (`from worker import logging as fleet_logging`).
__all__ = ["bind", "bound", "clear", "configure", "configure_process", "configured", "current", "flush", "stop"]

_listener: Listener | None = None
# A forked process's listener from its parent, never closed there: the parent's queued lines are the parent's
# to write, and a fork that could not wait for the writer may have left a stream lock held (log_writer).
_inherited: list[Listener] = []
# Celery's per-task INFO lines ("received", "succeeded in") print arguments and return values in clear
# (account ids, amounts) and cost a line per task: the fleet logs its own structured line instead. These
# loggers are set to WARNING, so Celery does not even build those records: it reads the level once, when the
# worker builds its strategies and tracers (a filter that dropped them left the main process building a
# "received" record per message). Their warnings and errors (failures) stay; `worker.signals` writes the
# retry line (INFO) of its own.
ARGUMENT_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


class LogFiles(BaseModel):
    """The `logging` section of FLEET_CONFIG: when one process's JSON log file rotates, how many are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Each process rotates only its own file (see process_role), so these hold per process.
    max_bytes: int = Field(default=20_000_000, ge=1024)
    backup_count: int = Field(default=5, ge=0)


def parse_log_files(raw: dict[str, Any]) -> LogFiles:
    """Validate a `logging` section; SettingsError names the failing key."""
    return validate_section(LogFiles, "logging", raw, SettingsError)


def process_role(role: str) -> str:
    """A pool child's own file name: Celery's `%n%I` convention, `worker-w1` -> `worker-w1-2` for child 2.

    A rotating file must have one writer: children that shared their worker's file each rotated it on
    their own count, renaming and deleting files the others were still writing to.
    """
    index = current_process_index()
    return f"{role}-{index}" if index else role


def configure_process(role: str) -> None:
    """`configure` with the process's settings: FLEET_LOG_DIR, FLEET_LOG_LEVEL and the `logging` section."""
    settings = get_settings()
    configure(role, settings.log_dir, settings.log_level, parse_log_files(settings.section("logging")))


def configure(role: str, log_dir: Path, level: str = "INFO", files: LogFiles | None = None) -> None:
    """Send every log line as JSON to stderr and to the rotating file `<role>.jsonl`, through a queue."""
    global _listener
    stop()
    files = files or LogFiles()
    formatter = json_formatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / f"{role}.jsonl", maxBytes=files.max_bytes, backupCount=files.backup_count, encoding="utf-8"
            )
        )
    except OSError as exc:
        sys.stderr.write(f"cannot write logs to {log_dir}: {exc}; logging to stderr only\n")
    for handler in handlers:
        handler.setFormatter(formatter)
    log_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
    queue_handler = logging.handlers.QueueHandler(log_queue)
    queue_handler.addFilter(ContextFilter())
    queue_handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(queue_handler)
    root.setLevel(level.upper())
    for name in ARGUMENT_LOGGERS:
        chatty = logging.getLogger(name)
        chatty.setLevel(max(logging.WARNING, root.level))
        if not any(isinstance(f, TaskArgumentsFilter) for f in chatty.filters):
            chatty.addFilter(TaskArgumentsFilter())
    _listener = Listener(log_queue, handlers)
    _listener.start()
    atexit.register(stop)


def configured() -> bool:
    """True when this process writes its log lines (`configure` ran in it, or in the parent it forked from)."""
    return _listener is not None


def flush() -> None:
    """Write the queued lines now (a pool process about to exit: it leaves with os._exit, without atexit)."""
    if _listener is not None:
        _listener.drain()


def stop() -> None:
    """Flush and stop the listener thread (at exit; a pool child calls it on worker_process_shutdown)."""
    global _listener
    if _listener is not None:
        listener, _listener = _listener, None
        if listener.inherited:
            _inherited.append(listener)
        else:
            listener.stop()
            for handler in listener.handlers:
                handler.close()
