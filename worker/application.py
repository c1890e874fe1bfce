"""The Celery app that every fleet process loads (`celery -A worker ...`), built by `create_app()`.

Importing a fleet module only defines things: `create_app()` is the one place that builds the app and
installs the codec, the library patches, the signal handlers, telemetry and the watchdog in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.local import Proxy

from worker import alerts, dead_letters, metrics, otel, patches, signals, telemetry, watchdog

# Task modules: each package's thin adapters. Later packages add theirs here.
TASK_MODULES = ["worker.tasks", "worker.ledger.tasks", "worker.agents.tasks", "worker.reports.tasks"]

_app: Celery | None = None
# Every task declared with `task()`: registered on the app when it is built (or at once if it is built already).
_declared: list[tuple[Callable[..., Any], dict[str, Any]]] = []


def create_app() -> Celery:
    """Build the fleet's Celery app and install, in this order, what every fleet process runs beside it."""
    # Before any metric is made: this process's metrics are written to the folder every process shares.
    metrics.use_shared_folder()
    # The fleet's patches of library internals (transport, JSON decoder, saferepr, consumer), or none with
    # FLEET_STOCK_LIBRARIES=true: worker/patches.py chooses, docs/PATCHES.md lists them.
    app = Celery("fleet", include=TASK_MODULES, amqp=patches.AMQP_FACTORY)
    app.config_from_object("celeryconfig")
    patches.install(app)
    dead_letters.install()  # records refused messages
    signals.install()  # logging, correlation ids and task context on every line
    alerts.install()  # the alert evaluator of worker and beat main processes (docs/reports.md)
    otel.install()  # optional traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set
    telemetry.install()  # per-minute aggregates and Prometheus counters (reports.telemetry)
    watchdog.install()  # exits a worker that stopped consuming; see docs/RELIABILITY.md
    for fun, options in _declared:
        app.task(**options)(fun)
    return app


def get_app() -> Celery:
    """This process's fleet app, built at the first call."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Declare a fleet task (`app.task` options, `name` required); it is registered when the app is built.

    Unlike Celery's `shared_task`, which follows whichever app was created last, this binds to the fleet's app.
    """
    name = options["name"]

    def declare(fun: Callable[..., Any]) -> Any:
        _declared.append((fun, options))
        if _app is not None:
            _app.task(**options)(fun)
        return Proxy(lambda: get_app().tasks[name], __doc__=fun.__doc__)

    return declare


def __getattr__(name: str) -> Celery:
    # `from worker.application import app`: the app is built at its first use, never by an import.
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
