"""The Grafana dashboard and the Prometheus alert rules parse and only name metrics the fleet exports."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.support import ROOT

# Metric families the fleet defines (worker/metrics.py), each by its exported name; the e2e test
# (tests/e2e/test_fleet_as_documented.py) scrapes a running fleet for every name deploy_metric_names() finds.
KNOWN = re.compile(
    r"^(celery_task_(succeeded|failed|retried)_total|celery_task_(runtime|queue_wait)_seconds_(bucket|count|sum)"
    r"|celery_queue_length|celery_worker_up|agent_(requests|tool_calls|tokens_used)_total"
    r"|agent_stage_duration_seconds_bucket|fleet_(http_request|db_query)_duration_seconds_bucket"
    r"|ledger_events_total|ledger_quick_run_duration_seconds_(bucket|count|sum))$"
)
FUNCTIONS = {
    "sum",
    "by",
    "rate",
    "histogram_quantile",
    "clamp_min",
    "max",
    "absent",
    "or",
    "le",
    "name",
    "queue",
    "route",
    "verb",
    "stage",
    "tool",
    "mode",
    "status",
}


def _metrics(expr: str) -> set[str]:
    names = set(re.findall(r"(?<![0-9.])[a-z_][a-z0-9_]*", re.sub(r"\[[^\]]*\]|\"[^\"]*\"", "", expr)))
    return {n for n in names if n not in FUNCTIONS}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())["groups"][0][
        "rules"
    ]
    return rules


def _keda_queries() -> list[str]:
    from tests.kustomize import render

    return [
        trigger["metadata"]["query"]
        for obj in render(ROOT / "deploy" / "k8s" / "base")
        if obj["kind"] == "ScaledObject"
        for trigger in obj["spec"]["triggers"]
    ]


def deploy_metric_names() -> set[str]:
    """Every metric family the dashboard, the alert rules and the KEDA triggers query (histogram suffixes dropped)."""
    exprs = [*_dashboard_exprs(), *(rule["expr"] for rule in _alert_rules()), *_keda_queries()]
    return {re.sub(r"_(bucket|count|sum)$", "", name) for expr in exprs for name in _metrics(expr)}


def test_the_grafana_dashboard_queries_only_exported_metrics() -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) >= 10
    unknown = {name for expr in exprs for name in _metrics(expr) if not KNOWN.match(name)}
    assert unknown == set()


def test_the_keda_triggers_query_only_exported_metrics() -> None:
    queries = _keda_queries()
    assert queries and {n for q in queries for n in _metrics(q) if not KNOWN.match(n)} == set()


def test_the_alert_rules_parse_and_each_says_what_to_do() -> None:
    rules = _alert_rules()
    assert {"FleetNoWorkerUp", "FleetTaskFailureRatioHigh", "FleetQueueBacklog"} <= {r["alert"] for r in rules}
    for rule in rules:
        assert rule["annotations"]["action"] and rule["labels"]["severity"] in {"critical", "warning"}
        assert {n for n in _metrics(rule["expr"]) if not KNOWN.match(n)} == set(), rule["alert"]
