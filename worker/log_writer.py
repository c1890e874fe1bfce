"""The thread that writes a process's queued log records to its handlers, in order, off the task's thread."""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

# How long the listener thread gathers lines after the first one before it writes them all. Woken per record
# instead, it competed with the task's thread for the GIL on every line (docs/PERFORMANCE.md).
WRITE_INTERVAL_S = 0.02
# What `stop()` queues: everything before it is written, then the thread ends.
_STOP = object()
# Held by a writer thread while it writes a record (re-entrantly: a handler may flush), and by a fork while it
# happens: a forked child (a pool process) never inherits a stream lock held by a writer, held there for good.
# The fork waits at most FORK_WAIT_S (a writer blocked on a full stderr pipe must not stop the pool forking).
FORK_WAIT_S = 5.0
_writing = threading.RLock()
_fork_waited = False


def _before_fork() -> None:
    global _fork_waited
    _fork_waited = _writing.acquire(timeout=FORK_WAIT_S)


def _after_fork_in_parent() -> None:
    if _fork_waited:
        _writing.release()


def _after_fork_in_child() -> None:
    global _writing
    _writing = threading.RLock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class Listener:
    """Writes the queued records to the handlers in its own thread, in order.

    A log call only appends to the queue. The thread sleeps until a record arrives, gathers what comes in the
    next WRITE_INTERVAL_S and writes it all: a process that logs nothing never wakes it (timed wake-ups
    cost an idle process CPU).
    """

    def __init__(self, records: queue.SimpleQueue[Any], handlers: list[logging.Handler]) -> None:
        self.records, self.handlers = records, handlers
        self.pid = os.getpid()
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
            with _writing:
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

    @property
    def inherited(self) -> bool:
        """True in a process forked from the one that started it: its queue and handlers are the parent's."""
        return self.pid != os.getpid()

    def drain(self, timeout: float = 5.0) -> None:
        """Write every queued record now (by the writer thread when it runs, so lines keep their order)."""
        if self.inherited:
            return  # what it holds was queued by the parent, whose own thread writes it
        if not self._thread.is_alive() or threading.current_thread() is self._thread:
            self._write_queued()  # no writer thread here, or this is it (a handler flushing): write in place
            return
        written = threading.Event()
        self.records.put(written)
        written.wait(timeout)

    def stop(self) -> None:
        """Write what is queued and stop the thread (nothing in a forked process: see `inherited`)."""
        if self.inherited:
            return
        self._stopping.set()
        if self._thread.is_alive():
            self.records.put(_STOP)
            self._thread.join()
