"""A server span per HTTP request when traces are on (worker/otel.py), continuing the caller's `traceparent`.

Tasks the request sends carry the span's context in their message (Celery's instrumentation), so a workflow's
trace starts at the request that submitted it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker import otel


class TracingMiddleware:
    """Pure ASGI middleware; passes straight through when traces are off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not otel.enabled():
            await self.app(scope, receive, send)
            return
        from opentelemetry import context, propagate, trace
        from opentelemetry.trace import SpanKind

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        parent = propagate.extract(carrier)
        tracer = trace.get_tracer("agent-fleet")
        name = f"{scope['method']} {scope['path']}"
        with tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])

            async def record(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    route = getattr(scope.get("route"), "path", None)
                    if route:
                        span.set_attribute("http.route", route)
                        span.update_name(f"{scope['method']} {route}")
                await send(message)

            token = context.attach(trace.set_span_in_context(span))
            try:
                await self.app(scope, receive, record)
            finally:
                context.detach(token)
