"""Traces end to end: one trace from the producer's `traceparent` through the API, the workflow's tasks and its
tool calls, and a span per ledger event, exported over OTLP/HTTP by real processes to a receiver this test runs.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_service

from tests.e2e.conftest import ApiServer
from tests.ledger_cases import event
from tests.support import WorkerProcess, wait_for
from worker.redis_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Collector:
    """An OTLP/HTTP trace receiver: every span it was sent, decoded."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = trace_service.ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    service = next(
                        (a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), ""
                    )
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            collector.spans.append(
                                {
                                    "service": service,
                                    "name": span.name,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent": span.parent_span_id.hex(),
                                    "attributes": {a.key: _value(a.value) for a in span.attributes},
                                }
                            )
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(trace_service.ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of one trace."""
        return [s for s in self.spans if s["trace_id"] == trace_id]


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture(scope="module")
def traced(redis_server, session_dir: Path) -> Iterator[tuple[Collector, ApiServer, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """`agent api` and a worker of the agents and ledger queues, exporting to the collector."""
    from worker.migrate import upgrade

    collector = Collector()
    folder = session_dir / f"traces-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    database = f"sqlite:///{folder / 'fleet.db'}"
    upgrade(database)
    broker = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + "/6"
    with redis.Redis.from_url(broker) as fresh:
        fresh.flushdb()
    config = folder / "fleet.yaml"
    config.write_text("alerts:\n  enabled: false\nreports:\n  telemetry: false\n")
    env = {
        "FLEET_BROKER_URL": broker,
        "FLEET_RESULT_BACKEND": broker,
        "FLEET_DATABASE_URL": database,
        "FLEET_CONFIG": str(config),
        "FLEET_LOG_DIR": str(folder / "log"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    api = ApiServer(config, folder / "api.out", env).start()
    from ledger.client import producer_app

    worker = WorkerProcess(queues="agents,ledger", concurrency=2, name=f"traces-{uuid.uuid4().hex[:6]}", env=env)
    worker.start(producer_app(broker))
    try:
        yield collector, api, env
    finally:
        worker.stop()
        api.stop()
        collector.server.shutdown()
        collector.server.server_close()


def _connected(spans: list[dict[str, Any]], root_parent: str) -> None:
    """Every span's parent is another span of the trace, or the producer's span for the first one."""
    ids = {s["span_id"] for s in spans} | {root_parent}
    orphans = [(s["name"], s["parent"]) for s in spans if s["parent"] not in ids]
    assert orphans == [], orphans


def test_one_trace_runs_from_the_producer_through_every_stage_and_tool_call(traced) -> None:  # type: ignore[no-untyped-def]
    collector, api, env = traced
    # Given a producer with its own trace
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    workflow = {"input": "compute (12+30)*2", "mode": "planner", "profile": "local", "options": {}}
    # When it starts a workflow through the API and waits for it
    answer = httpx.post(
        api.url + "/api/v1/agent/run?wait=true",
        json=workflow,
        headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["run_id"]
    wanted = {"agents.run_workflow", "agents.analyze", "agents.gate", "agents.execute", "agents.run_subtask",
              "agents.verify"}  # fmt: skip

    def complete() -> list[dict[str, Any]] | None:
        spans = collector.of(trace_id)
        names = {s["name"].removeprefix("run/") for s in spans}
        ids = {s["span_id"] for s in spans} | {parent}
        whole = all(s["parent"] in ids for s in spans)  # each process exports on its own clock
        return spans if wanted <= names and "agent.tool_call" in names and whole else None

    spans = wait_for(complete, timeout=60, what="the workflow's spans")
    # Then the request, each task and each tool call are one connected trace under the producer's span
    _connected(spans, parent)
    http = [s for s in spans if s["service"] == "agent-fleet-api" and s["parent"] == parent]
    assert [s["name"] for s in http] == ["POST /api/v1/agent/run"]
    tasks = {s["name"]: s for s in spans if s["name"].startswith("run/")}
    assert tasks["run/agents.run_workflow"]["attributes"]["fleet.run_id"] == run_id
    analyze = tasks["run/agents.analyze"]["attributes"]
    assert analyze["gen_ai.operation.name"] == "chat" and "gen_ai.usage.input_tokens" in analyze
    assert analyze["gen_ai.request.model"] == "rules-v1"  # the local profile's model
    tools = [s for s in spans if s["name"] == "agent.tool_call"]
    assert all(s["attributes"]["gen_ai.tool.name"] and s["attributes"]["fleet.run_id"] == run_id for s in tools)
    # And the run record and the worker's log lines of the run carry the trace id
    assert answer.json()["trace_id"] == trace_id
    lines = [
        json.loads(line)
        for path in Path(env["FLEET_LOG_DIR"]).glob("*.jsonl")
        for line in path.read_text().splitlines()
        if run_id in line and line.startswith("{")
    ]
    assert lines and {line.get("trace_id") for line in lines if line.get("task_name")} == {trace_id}


def test_each_ledger_event_is_a_span_with_its_status_and_code(traced) -> None:  # type: ignore[no-untyped-def]
    collector, api, _env = traced
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    p = f"tr-{uuid.uuid4().hex[:6]}"
    events = [
        event(f"{p}-1", "account_opened", {"account": f"{p}-a", "currency": "EUR"}),
        event(f"{p}-2", "account_closed", {"account": f"{p}-nobody"}),
    ]
    answer = httpx.post(
        api.url + "/api/v1/ledger/events?wait=true",
        json={"events": events},
        headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        timeout=60,
    )
    assert answer.status_code == 202, answer.text

    def per_event() -> dict[str, dict[str, Any]] | None:
        spans = collector.of(trace_id)
        found = {s["attributes"]["ledger.event_id"]: s for s in spans if s["name"] == "ledger.event"}
        ids = {s["span_id"] for s in spans} | {parent}
        whole = all(s["parent"] in ids for s in spans)  # each process exports on its own clock
        return found if len(found) == 2 and whole else None

    found = wait_for(per_event, timeout=60, what="a span per ledger event, and the spans above them")
    _connected(collector.of(trace_id), parent)
    assert found[f"{p}-1"]["attributes"]["ledger.status"] == "accepted"
    rejected = found[f"{p}-2"]["attributes"]
    assert rejected["ledger.status"] == "rejected" and rejected["ledger.code"]
