"""JSON log lines with task context and masked secrets, written off the task's thread."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import logging.handlers
import queue
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from celery.utils.log import current_process_index
from pydantic import BaseModel, ConfigDict, Field
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder, JsonFormatter

from config_sections import validate_section
from worker.errors import SettingsError
from worker.masking import mask_text, mask_value
from worker.settings import get_settings

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "fleet_log_context", default=MappingProxyType({})
)
_listener: Listener | None = None
# Celery's per-task INFO lines ("received", "succeeded in") print arguments and return values in clear
# (account ids, amounts) and cost a line per task: the fleet logs its own structured line instead. These
# loggers are set to WARNING, so Celery does not even build those records: it reads the level once, when the
# worker builds its strategies and tracers (a filter that dropped them left the main process building a
# "received" record per message). Their warnings and errors (failures) stay; `worker.signals` writes the
# retry line (INFO) of its own.
ARGUMENT_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


class TaskArgumentsFilter(logging.Filter):
    """Drops the `data` field Celery puts on its task lines: the task's arguments in clear (its failure line
    prints the exception and the traceback in the message itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("data", None)
        return True


# Where a formatted line is kept on the record; a standard attribute, so never written out as a field.
_FORMATTED = "_fleet_line"
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", _FORMATTED}


def bind(**fields: Any) -> None:
    """Add fields to every log line of the current task or request."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def clear() -> None:
    """Forget the fields bound for the previous task or request."""
    _context.set({})


def current() -> dict[str, Any]:
    """The fields bound now."""
    return dict(_context.get())


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


# Every line has a category; a logger's name gives it unless the call passes extra={"category": ...}.
CATEGORIES = frozenset({"system", "agent", "ledger", "api", "audit", "performance", "security", "reliability"})
_CATEGORY_BY_LOGGER: tuple[tuple[str, str], ...] = (
    ("fleet.audit", "audit"),
    ("fleet.security", "security"),
    ("fleet.ledger", "ledger"),
    ("fleet.agents", "agent"),
    ("fleet.agent", "agent"),
    ("fleet.api", "api"),
    ("fleet.gateway", "api"),
    ("uvicorn", "api"),
    ("fleet.performance", "performance"),
    ("fleet.reliability", "reliability"),
)


def category_of(logger_name: str) -> str:
    """The default category of a logger's lines: by its name prefix, `system` otherwise."""
    for prefix, category in _CATEGORY_BY_LOGGER:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return category
    return "system"


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record, before it leaves the task's thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "category"):
            record.category = category_of(record.name)
        return True


class MaskingFilter(logging.Filter):
    """Redacts secrets in the message, its arguments and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = None
        for key in list(record.__dict__):
            if key not in _STANDARD:
                record.__dict__[key] = mask_value(key, record.__dict__[key])
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# Characters that str.splitlines() (and many log shippers) treat as line breaks, which JSON leaves unescaped.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


_ENCODER = JsonEncoder()


def _dumps(data: dict[str, Any], **options: Any) -> str:
    """A log line's JSON, by orjson (python-json-logger's encoder for the types orjson does not know); the
    standard library's for what orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(data, default=_ENCODER.default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(data, cls=JsonEncoder, ensure_ascii=options.get("ensure_ascii", False))


class OneLineJsonFormatter(JsonFormatter):
    """JSON that stays on one line for every reader: the few line-breaking characters JSON allows are escaped.

    A record is formatted once: the file handler formats it twice (its size check, then the line) and the
    stderr handler once more, so the line is kept on the record (the listener's own copy) for this formatter.
    The common record (a text message, no exception or stack) is laid out here, with python-json-logger's
    fields in its order, and serialised by orjson (the cheaper path). python-json-logger formats the rest.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        cached = record.__dict__.get(_FORMATTED)
        if cached is not None and cached[0] is self:
            return str(cached[1])
        if isinstance(record.msg, dict) or record.exc_info or record.exc_text or record.stack_info:
            line = str(super().format(record))
        else:
            line = self._plain(record)
        line = line.translate(_LINE_BREAKS)
        record.__dict__[_FORMATTED] = (self, line)
        return line

    def _plain(self, record: logging.LogRecord) -> str:
        # What python-json-logger's format() builds for such a record: the format's fields renamed, then every
        # attribute that is not reserved and does not start with "_".
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        rename, skip = self.rename_fields, self._skip_fields
        data = {rename.get(field, field): record.__dict__.get(field) for field in self._required_fields}
        for key, value in record.__dict__.items():
            if key not in skip and not (isinstance(key, str) and key.startswith("_")):
                data[rename.get(key, key)] = value
        return _dumps(data)


# How long the listener thread gathers lines after the first one before it writes them all. Woken per record
# instead, it competed with the task's thread for the GIL on every line (docs/PERFORMANCE.md).
WRITE_INTERVAL_S = 0.02
# What `stop()` queues: everything before it is written, then the thread ends.
_STOP = object()


class Listener:
    """Writes the queued records to the handlers in its own thread, in order.

    A log call only appends to the queue. The thread sleeps until a record arrives, gathers what comes in the
    next WRITE_INTERVAL_S and writes it all: a process that logs nothing never wakes it (timed wake-ups
    cost an idle process CPU).
    """

    def __init__(self, records: queue.SimpleQueue[Any], handlers: list[logging.Handler]) -> None:
        self.records, self.handlers = records, handlers
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-log-writer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def _run(self) -> None:
        while self._write(self.records.get()):
            self._stopping.wait(WRITE_INTERVAL_S)
            if not self._write_queued():
                return

    def _write(self, item: Any) -> bool:
        """Write one queued item; False once the stop marker is reached."""
        if item is _STOP:
            return False
        if isinstance(item, threading.Event):
            item.set()  # a flush marker: everything queued before it is written
        else:
            for handler in self.handlers:
                handler.handle(item)
        return True

    def _write_queued(self) -> bool:
        while True:
            try:
                item = self.records.get_nowait()
            except queue.Empty:
                return True
            if not self._write(item):
                return False

    def drain(self, timeout: float = 5.0) -> None:
        """Write every queued record now (by the writer thread when it runs, so lines keep their order)."""
        if not self._thread.is_alive() or threading.current_thread() is self._thread:
            self._write_queued()  # no writer thread here, or this is it (a handler flushing): write in place
            return
        written = threading.Event()
        self.records.put(written)
        written.wait(timeout)

    def stop(self) -> None:
        """Write what is queued and stop the thread.

        In a forked process the thread is not running: what the queue holds there was queued by the parent,
        whose own thread writes it.
        """
        self._stopping.set()
        if self._thread.is_alive():
            self.records.put(_STOP)
            self._thread.join()


def json_formatter() -> logging.Formatter:
    """The formatter of every fleet log line."""
    return OneLineJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "asctime": "ts"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        timestamp=False,
        json_ensure_ascii=False,
        json_serializer=_dumps,
        reserved_attrs=[*RESERVED_ATTRS, _FORMATTED],
    )


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
        listener.stop()
        for handler in listener.handlers:
            handler.close()
