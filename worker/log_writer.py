"""The thread that writes a process's queued log records to its handlers, in order, off the task's thread."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

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
