"""Optional OpenTelemetry traces (the `otel` extra), on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

`setup()` installs a tracer provider with the OTLP exporter and Celery's instrumentation in each worker
process; `span(name, **attributes)` is what adapters wrap an agent stage or tool call in (with `gen_ai.*`
attributes). Without the endpoint, or without the extra installed, both cost nothing.
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
_enabled = False


def setup(service_name: str = "agent-fleet") -> bool:
    """Export traces to the OTLP endpoint; False (and a warning if the extra is missing) otherwise."""
    global _enabled
    if _enabled or not os.environ.get(ENDPOINT_ENV):
        return _enabled
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
    CeleryInstrumentor().instrument()
    _enabled = True
    return True


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span around an agent stage or tool call (attributes such as `gen_ai.request.model`); no-op when off."""
    if not _enabled:
        yield None
        return
    from opentelemetry import trace

    with trace.get_tracer("agent-fleet").start_as_current_span(name, attributes=attributes) as current:
        yield current


def _per_process(**_: Any) -> None:
    setup()


def install() -> None:
    """Set up traces in each pool process (create_app calls it): exporter threads do not survive fork."""
    signals.worker_process_init.connect(_per_process, weak=False)
