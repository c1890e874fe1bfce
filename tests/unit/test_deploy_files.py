"""The Grafana dashboard and the Prometheus alert rules parse and only name metrics the fleet exports."""

from __future__ import annotations

import json
import re

import yaml

from tests.support import ROOT

# Metric families the fleet defines (worker/metrics.py) plus the ledger package's own ledger_* metrics.
KNOWN = re.compile(
    r"^(celery_task_(succeeded|failed|retried)_total|celery_task_(runtime|queue_wait)_seconds_(bucket|count|sum)"
    r"|celery_queue_length|celery_worker_up|agent_(requests|tool_calls|tokens_used)_total"
    r"|agent_stage_duration_seconds_bucket|fleet_(http_request|db_query)_duration_seconds_bucket|ledger_\w+)$"
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


def test_the_grafana_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    unknown = {name for expr in exprs for name in _metrics(expr) if not KNOWN.match(name)}
    assert unknown == set()


def test_the_alert_rules_parse_and_each_says_what_to_do() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    assert {"FleetNoWorkerUp", "FleetTaskFailureRatioHigh", "FleetQueueBacklog"} <= {r["alert"] for r in rules}
    for rule in rules:
        assert rule["annotations"]["action"] and rule["labels"]["severity"] in {"critical", "warning"}
        assert {n for n in _metrics(rule["expr"]) if not KNOWN.match(n)} == set(), rule["alert"]
