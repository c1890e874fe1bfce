"""MCP tools through real worker processes: a real MCP server (stdio, and streamable HTTP started here) whose
tools run inside workflows under the gatekeeper's allow-list, cache, time limits, approval and audit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.services import agents as service
from tests.support import ROOT, WorkerProcess, wait_for
from worker.redis_server import free_port

pytestmark = [pytest.mark.integration]
QUEUE = "agents-mcp"
SERVER = str(ROOT / "tests" / "mcp_server.py")


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def notes(session_dir: Path) -> Path:
    folder = session_dir / QUEUE
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "notes.txt"


@pytest.fixture(scope="module")
def http_server(notes: Path) -> Iterator[str]:
    """`tests/mcp_server.py http PORT`: the MCP server over streamable HTTP, as its own process."""
    port = free_port()
    env = {"FLEET_TEST_MCP_NOTES": str(notes), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, SERVER, "http", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), timeout=30, what="the MCP server to listen")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # uvicorn waits for the sessions a timed-out call left open
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def mcp_worker(celery_app, database_url: str, notes: Path, http_server: str) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    config = notes.parent / "fleet.yaml"
    config.write_text(
        "agents:\n"
        f"  queue: {QUEUE}\n"
        "  tool_retries: 1\n"
        "  retry_backoff_s: 0.05\n"
        "  blocked_tools: [calc.slow]\n"
        "  mcp_servers:\n"
        f"    - {{name: calc, transport: stdio, command: ['{sys.executable}', '{SERVER}', stdio],"
        f" env: {{FLEET_TEST_MCP_NOTES: '{notes}'}}}}\n"
        f"    - {{name: web, transport: http, url: '{http_server}', version: v2, timeout_s: 2}}\n"
    )
    worker = WorkerProcess(queues=QUEUE, name=QUEUE, env={"FLEET_CONFIG": str(config)}).start(celery_app)
    yield worker
    worker.stop()


def _run(*subtasks: dict[str, Any]) -> dict[str, Any]:
    return service.run("mcp tools", options={"queue": QUEUE, "subtasks": list(subtasks)}, timeout_s=60)


def test_read_only_mcp_tools_over_stdio_and_http_run_in_a_workflow_and_are_cached(mcp_worker: WorkerProcess) -> None:
    calls = (
        {"id": "s1", "tool": "calc.add", "args": {"a": 2, "b": 3}},
        {"id": "s2", "tool": "web.add", "version": "v2", "args": {"a": 40, "b": 2}},
    )
    first = _run(*calls)
    again = _run(*calls)

    assert first["status"] == "succeeded", first["error"]
    assert first["output"]["results"] == {"s1": {"sum": 5.0}, "s2": {"sum": 42.0}}
    assert first["stages"][1]["output"]["verdict"]["decision"] == "approve"
    assert [r["cached"] for r in again["subtasks"]] == [True, True]


def test_an_mcp_tool_with_side_effects_waits_for_approval_then_runs_once(
    mcp_worker: WorkerProcess, notes: Path
) -> None:
    held = _run({"id": "s1", "tool": "web.note", "version": "v2", "args": {"text": "hello from the fleet"}})

    assert held["status"] == "awaiting_approval"
    assert "s1: tool web.note needs a person's approval" in held["stages"][1]["output"]["verdict"]["reasons"]
    assert not notes.exists() or "hello from the fleet" not in notes.read_text()

    service.approve(held["run_id"], actor="tester")
    done = service.wait_for_run(held["run_id"], timeout_s=60)

    assert done["status"] == "succeeded", done["error"]
    assert done["output"]["results"]["s1"] == {"saved": "hello from the fleet"}
    assert notes.read_text().splitlines().count("hello from the fleet") == 1


@pytest.mark.parametrize(
    ("subtask", "reason"),
    [
        ({"id": "s1", "tool": "calc.slow", "args": {"seconds": 1}}, "s1: tool calc.slow is blocked by policy"),
        ({"id": "s1", "tool": "calc.nope", "args": {}}, "s1: tool calc.nope:v1 is not registered"),
        ({"id": "s1", "tool": "calc.add", "args": {"a": "two", "b": 3}}, "s1: "),
    ],
    ids=["blocked", "unregistered", "bad-arguments"],
)
def test_the_gatekeeper_rejects_mcp_tools_outside_its_allow_list_or_schema(
    mcp_worker: WorkerProcess, subtask: dict[str, Any], reason: str
) -> None:
    record = _run(subtask)

    assert record["status"] == "rejected"
    assert reason in record["error"]


def test_an_mcp_call_past_the_servers_time_limit_fails_the_subtask_with_the_reason(mcp_worker: WorkerProcess) -> None:
    record = _run({"id": "s1", "tool": "web.slow", "version": "v2", "args": {"seconds": 20}})

    assert record["status"] == "failed"
    assert "web.slow:v2: MCP server web did not answer: timed out after 2 s (after 2 attempts)" in record["error"]


def test_agent_tool_list_shows_the_mcp_tools_with_their_origin_and_approval(
    mcp_worker: WorkerProcess, notes: Path
) -> None:
    env = {**os.environ, "FLEET_CONFIG": str(notes.parent / "fleet.yaml")}
    agent = str(Path(sys.executable).parent / "agent")
    listed = subprocess.run([agent, "tool", "list", "--json"], env=env, capture_output=True, text=True, check=True)

    tools = {f"{t['name']}:{t['version']}": t for t in json.loads(listed.stdout)}
    assert tools["calc.add:v1"]["origin"] == "mcp:calc" and not tools["calc.add:v1"]["side_effect"]
    assert tools["web.note:v2"]["side_effect"] and tools["web.note:v2"]["needs_approval"]
    assert tools["web.add:v2"]["schema"]["required"] == ["a", "b"]
    assert "math.calculate:v1" in tools  # beside the fleet's own


def test_a_stdio_mcp_server_sees_its_own_variables_not_the_workers_secrets(mcp_worker: WorkerProcess) -> None:
    record = _run(
        {"id": "s1", "tool": "calc.environ", "args": {"name": "FLEET_DATABASE_URL"}},
        {"id": "s2", "tool": "calc.environ", "args": {"name": "FLEET_BROKER_URL"}},
        {"id": "s3", "tool": "calc.environ", "args": {"name": "FLEET_TEST_MCP_NOTES"}},
    )

    assert record["status"] == "succeeded", record["error"]
    assert record["output"]["results"] == {"s1": {"present": False}, "s2": {"present": False}, "s3": {"present": True}}
