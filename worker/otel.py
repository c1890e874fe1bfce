"""Optional OpenTelemetry traces (the `otel` extra), on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

`setup()` installs a tracer provider exporting over OTLP/HTTP and Celery's instrumentation (a span per task,
the context carried in each message's `traceparent` header) in each worker pool process and API process;
`span(name, **attributes)` wraps a tool call or a ledger event, `annotate(**attributes)` adds to the current
span (the task's). Without the endpoint, or without the extra installed, each costs a flag check.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import signals

log = logging.getLogger("fleet.performance")
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
_state = {"enabled": False, "pid": 0}


def enabled() -> bool:
    """True once this process exports traces."""
    return bool(_state["enabled"]) and _state["pid"] == os.getpid()


def setup(service_name: str = "agent-fleet") -> bool:
    """Export traces to the OTLP endpoint; False (and a warning if the extra is missing) otherwise."""
    if enabled() or not os.environ.get(ENDPOINT_ENV):
        return enabled()
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning(
            "%s is set but the otel extra is not installed (%s): pip install 'agent-fleet[otel]'", ENDPOINT_ENV, exc
        )
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    # Connected after the instrumentation's own handler: its task span is current when this one runs.
    signals.task_prerun.connect(_bind_trace_id, weak=False)
    _state.update(enabled=True, pid=os.getpid())
    return True


def trace_id() -> str | None:
    """The current trace id (32 hex digits), None when there is no span."""
    if not enabled():
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _bind_trace_id(**_: Any) -> None:
    from worker import logging as fleet_logging

    fleet_logging.bind(trace_id=trace_id())


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span around a tool call or a ledger event (attributes such as `gen_ai.request.model`); no-op when off."""
    if not enabled():
        yield None
        return
    from opentelemetry import trace

    clean = {k: v for k, v in attributes.items() if v is not None}
    with trace.get_tracer("agent-fleet").start_as_current_span(name, attributes=clean) as current:
        yield current


def annotate(**attributes: Any) -> None:
    """Add attributes to the current span (a task's); no-op when off."""
    if not enabled():
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key, value)


def flush() -> None:
    """Export what is buffered (before a process exits)."""
    if enabled():
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        force = getattr(provider, "force_flush", None)
        if force is not None:
            force()


def _per_process(**_: Any) -> None:
    setup()


def install() -> None:
    """Set up traces in each pool process (create_app calls it): exporter threads do not survive fork."""
    signals.worker_process_init.connect(_per_process, weak=False)
    signals.worker_process_shutdown.connect(_flush_at_exit, weak=False)


def _flush_at_exit(**_: Any) -> None:
    flush()
