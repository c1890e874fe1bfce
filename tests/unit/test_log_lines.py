"""Every log record is exactly one JSON line, whatever characters its fields carry."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import queue
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pythonjsonlogger.json import JsonFormatter

from tests.processes import ROOT
from worker.errors import SettingsError
from worker.log_format import json_formatter
from worker.log_writer import WRITE_INTERVAL_S, Listener
from worker.logging import LogFiles, parse_log_files, process_role


@pytest.mark.parametrize("text", ["a\u2028b", "a\u2029b", "a\x85b", "a\nb\r", "줄 바꿈\u2028", "\x0b\x0c\x1c\x1d\x1e"])
def test_a_field_with_line_breaking_characters_stays_on_one_json_line(text: str) -> None:
    record = logging.LogRecord("fleet.test", logging.INFO, __file__, 1, "event %s", (text,), None)

    line = json_formatter().format(record)

    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == f"event {text}"


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Point:
    x: int


_EXTRAS = {
    "status": "accepted",
    "codes": ["exceeds_balance"],
    "nested": {"a": [1, 2.5, None, True], 3: "int key"},
    "at": datetime(2026, 11, 21, 10, 30, 0, 123456, tzinfo=UTC),
    "naive": datetime(2026, 11, 21, 10, 30),
    "run": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "amount": Decimal("12.50"),
    "colour": _Colour.RED,
    "point": _Point(3),
    "raw": b"\x00bytes",
    "error": ValueError("boom"),
    "kind": dict,
    "huge": 2**70,
    "_private": "not written",
    7: "a key that is not a name",
}


@pytest.mark.parametrize("key", list(_EXTRAS))
def test_a_plain_record_reads_as_python_json_loggers_line(key: str) -> None:
    # python-json-logger with the fleet's settings and its own serialiser: what the lines were before
    reference = JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "asctime": "ts"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        timestamp=False,
        json_ensure_ascii=False,
    )
    record = logging.getLogger("fleet.ledger").makeRecord(
        "fleet.ledger", logging.INFO, __file__, 1, "event %s", ("x",), None, extra={key: _EXTRAS[key]}
    )

    line = json_formatter().format(record)

    assert json.loads(line) == json.loads(reference.format(record))
    assert list(json.loads(line))[:4] == ["ts", "level", "logger", "message"]


def test_a_record_with_an_exception_keeps_its_traceback() -> None:
    try:
        raise RuntimeError("broken")
    except RuntimeError:
        record = logging.getLogger("fleet.test").makeRecord(
            "fleet.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info(), extra={"task_id": "t-1"}
        )
    fields = json.loads(json_formatter().format(record))
    assert fields["message"] == "failed" and fields["task_id"] == "t-1"
    assert "RuntimeError: broken" in fields["exc_info"]


def test_the_logging_section_sets_rotation_and_a_bad_value_names_its_key() -> None:
    assert parse_log_files({}) == LogFiles(max_bytes=20_000_000, backup_count=5)
    assert parse_log_files({"max_bytes": 4096, "backup_count": 0}).max_bytes == 4096
    with pytest.raises(SettingsError, match=r"^FLEET_CONFIG: logging\.max_bytes: Input should be greater than"):
        parse_log_files({"max_bytes": 10})
    with pytest.raises(SettingsError, match=r"logging\.rotate: Extra inputs are not permitted"):
        parse_log_files({"rotate": "daily"})


def test_the_main_process_keeps_its_role_as_its_file_name() -> None:
    # Pool processes get `-<index>` appended (tests/integration/test_log_files.py runs a real pool).
    assert process_role("worker-w1") == "worker-w1"


def test_the_file_and_stderr_lines_are_the_same_one_line_and_carry_only_the_record_fields(tmp_path) -> None:
    import logging.handlers

    formatter = json_formatter()
    handlers = [
        logging.handlers.RotatingFileHandler(tmp_path / "a.jsonl", maxBytes=1_000_000, encoding="utf-8"),
        logging.FileHandler(tmp_path / "b.jsonl", encoding="utf-8"),
    ]
    record = logging.LogRecord("fleet.ledger", logging.INFO, __file__, 1, "ledger event %s", ("accepted",), None)
    record.event_id = "evt-1"
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.handle(record)
        handler.close()
    # A second formatter (a reconfigured process) formats the same record afresh, without the first one's line.
    again = json.loads(json_formatter().format(record))

    lines = [(tmp_path / name).read_text(encoding="utf-8").splitlines() for name in ("a.jsonl", "b.jsonl")]
    assert lines[0] == lines[1] and len(lines[0]) == 1
    fields = json.loads(lines[0][0])
    assert fields == again
    assert set(fields) == {"ts", "level", "logger", "message", "event_id"}
    assert fields["message"] == "ledger event accepted"


class _CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _CountingEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return super().wait(timeout)


def test_an_idle_process_log_writer_sleeps_until_a_line_arrives_and_writes_every_line_in_order() -> None:
    # Given a listener whose thread is running and nothing logged
    records: queue.SimpleQueue[object] = queue.SimpleQueue()
    handler = _CountingHandler()
    listener = Listener(records, [handler])
    listener._stopping = stopping = _CountingEvent()
    listener.start()
    try:
        # When a few write intervals pass with no line, the writer has not woken once
        threading.Event().wait(WRITE_INTERVAL_S * 10)
        assert stopping.waits == 0
        # And lines queued from two threads are written, in the order queued, by the time flush returns
        for index in range(500):
            records.put(logging.makeLogRecord({"msg": f"line {index}"}))
        flusher = threading.Thread(target=listener.drain)
        flusher.start()
        flusher.join()
        assert handler.messages == [f"line {index}" for index in range(500)]
        records.put(logging.makeLogRecord({"msg": "last"}))
    finally:
        listener.stop()
    # Then stop writes what was still queued and ends the thread
    assert handler.messages[-1] == "last"
    assert not listener._thread.is_alive()


def test_a_flush_from_a_handler_on_the_writer_thread_writes_in_place_without_waiting_for_itself() -> None:
    # Given a handler that flushes the listener from inside the writer thread (as an exit hook could)
    records: queue.SimpleQueue[object] = queue.SimpleQueue()
    written = _CountingHandler()
    flushed = threading.Event()

    class Flushing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "flush":
                listener.drain(timeout=20)
                flushed.set()

    listener = Listener(records, [Flushing(), written])
    listener.start()
    try:
        # When that handler sees its line, with more lines queued behind it
        for message in ("first", "flush", "after"):
            records.put(logging.makeLogRecord({"msg": message}))
        # Then the flush returns at once (not after its timeout) and every line is written once
        assert flushed.wait(10)
        listener.drain()
        assert sorted(written.messages) == ["after", "first", "flush"]
    finally:
        listener.stop()


_FORKS = 30
_FORKING = """
import logging, os, signal, sys, threading
from pathlib import Path
from worker.logging import LogFiles, configure, flush

logs = Path(sys.argv[1])
configure("parent", logs, files=LogFiles(max_bytes=1_000_000, backup_count=1))
log = logging.getLogger("fleet.test")
line = "x" * 2000


def chatter() -> None:
    while True:
        log.info(line)


for _ in range(2):
    threading.Thread(target=chatter, daemon=True).start()
hung = 0
for n in range(int(sys.argv[2])):
    pid = os.fork()
    if pid == 0:  # as a pool child does (worker_process_init, then os._exit); or a plain exit, with atexit
        signal.alarm(5)
        configure(f"child-{n}", logs)
        logging.getLogger("fleet.test").info("child %d up", n)
        flush()
        os._exit(0) if n % 2 else sys.exit(0)
    _, status = os.waitpid(pid, 0)
    hung += os.WIFSIGNALED(status)
print(hung)
"""


def test_a_process_forked_while_the_log_writer_writes_configures_its_own_logging_and_logs(tmp_path) -> None:
    # Given a process whose writer thread is busy writing to its file when it forks (as a worker forks its pool)
    # When each forked child configures its own logging, as a pool child does, and logs a line
    # (its stderr, a flood of lines, is dropped; the files are read)
    done = subprocess.run([sys.executable, "-c", _FORKING, str(tmp_path), str(_FORKS)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, cwd=ROOT, timeout=600)  # fmt: skip
    assert done.returncode == 0
    # Then no child hung on a stream lock its parent's writer held at the fork, and each wrote its own line
    assert done.stdout.split()[-1] == "0", f"children hung: {done.stdout}"
    for n in range(_FORKS):
        [record] = [json.loads(row) for row in (tmp_path / f"child-{n}.jsonl").read_text().splitlines()]
        assert record["message"] == f"child {n} up"
