"""Flower's /metrics behind its authentication: the tripwire on the Flower internals worker/flower_auth.py uses."""

from __future__ import annotations

import pytest
from flower import urls
from flower.views.monitor import Healthcheck, Metrics

from worker.flower_auth import METRICS_ROUTE, AuthenticatedMetrics, protect_metrics


def test_flower_still_serves_its_metrics_unauthenticated_from_its_url_table() -> None:
    # The day this fails, Flower changed how /metrics is routed or authenticated: revisit worker/flower_auth.py.
    routes = {handler[0]: handler[1] for handler in urls.handlers if isinstance(handler, tuple)}
    assert routes[METRICS_ROUTE] in (Metrics, AuthenticatedMetrics)
    assert routes["/healthcheck"] is Healthcheck
    assert not hasattr(Metrics.get, "__wrapped__")  # Flower itself does not authenticate it


def test_the_metrics_route_is_replaced_by_the_authenticated_handler_only() -> None:
    table = [(r"/", object), (METRICS_ROUTE, Metrics), (r"/healthcheck", Healthcheck)]
    protect_metrics(table)
    assert table == [(r"/", object), (METRICS_ROUTE, AuthenticatedMetrics), (r"/healthcheck", Healthcheck)]
    assert hasattr(AuthenticatedMetrics.get, "__wrapped__")  # tornado.web.authenticated


def test_flower_does_not_start_when_the_metrics_route_is_gone() -> None:
    with pytest.raises(RuntimeError, match="no /metrics route"):
        protect_metrics([(r"/", object)])
