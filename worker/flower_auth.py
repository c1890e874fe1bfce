"""Flower's `/metrics` behind Flower's own authentication (Flower 2.x serves it to anyone, by design).

Flower builds its app from the list `flower.urls.handlers` after reading flowerconfig.py, so replacing the
`/metrics` entry there is enough. tests/unit/test_flower_auth.py fails the day Flower's table changes.
"""

from __future__ import annotations

from typing import Any

from flower import urls
from flower.views.monitor import Metrics
from tornado import web

METRICS_ROUTE = r"/metrics"


class AuthenticatedMetrics(Metrics):  # type: ignore[misc]
    """Flower's Prometheus metrics, for a caller its basic auth (or auth provider) lets in."""

    @web.authenticated
    async def get(self) -> None:
        """The metrics, after authentication (401 without credentials)."""
        await super().get()


def protect_metrics(handlers: list[Any] | None = None) -> None:
    """Serve `/metrics` with AuthenticatedMetrics; RuntimeError (Flower does not start) when the route is gone."""
    table = urls.handlers if handlers is None else handlers
    for index, handler in enumerate(table):
        if isinstance(handler, tuple) and handler[0] == METRICS_ROUTE:
            table[index] = (METRICS_ROUTE, AuthenticatedMetrics, *handler[2:])
            return
    raise RuntimeError("Flower has no /metrics route in flower.urls.handlers: revisit worker/flower_auth.py")
