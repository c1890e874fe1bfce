"""The cost of traces on the one-event-per-task ledger row: the same measurement with and without an OTLP endpoint.

python -m bench.tracing [--tasks 3000] [--rounds 2]

The endpoint is a local HTTP server that accepts and drops what it is sent (no collector's own cost); rounds
alternate off and on, so a machine whose load drifts weighs on both.
"""

from __future__ import annotations

import argparse
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.common import BenchContext, Row, private_environment


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def measure(ctx: BenchContext, tasks: int, rounds: int) -> tuple[float, float]:
    """Events/s, best of `rounds`, without and with traces exported."""
    from bench.ledger import one_per_task
    from worker.migrate import upgrade
    from worker.redis_server import free_port

    upgrade(os.environ["FLEET_DATABASE_URL"])

    sink = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    off: list[float] = []
    on: list[float] = []
    try:
        for _ in range(rounds):
            os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
            off.append(one_per_task(ctx, tasks))
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_port}"
            on.append(one_per_task(ctx, tasks))
    finally:
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        sink.shutdown()
        sink.server_close()
    return max(off), max(on)


def run(ctx: BenchContext) -> list[Row]:
    """The rows for `make bench`."""
    off, on = measure(ctx, ctx.size(3000, 500), 2)
    return [
        Row("ledger.quick_run, one event per task, traces off", off, "events/s"),
        Row("ledger.quick_run, one event per task, traces exported", on, "events/s", off, "(cost of tracing)"),
    ]


def main() -> None:
    """Print both figures and their ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with private_environment() as ctx:
        off, on = measure(ctx, args.tasks, args.rounds)
    print(f"traces off: {off:.0f} events/s; on: {on:.0f} events/s; on/off {on / off:.2f}")


if __name__ == "__main__":
    main()
