"""Approvers hear of a held run through the alert channels: a signed `approval.requested` with a link to it."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.processes import WorkerProcess, documented_env, wait_for
from tests.support import run_agent
from worker.redis_server import RedisServer, free_port

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"approvals-secret-of-32-bytes!!!!").decode()
DB = 6  # a Redis database of this test's own: only its worker takes the run


@pytest.fixture
def received() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver that keeps every delivery whose Standard Webhooks signature verifies."""
    kept: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            kept.append(Webhook(SECRET).verify(body, dict(self.headers)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", kept
    server.shutdown()
    server.server_close()


def test_a_held_run_sends_a_signed_approval_request_with_a_link_to_it(
    redis_server: RedisServer, database_url: str, tmp_path: Path, received: tuple[str, list[dict[str, Any]]]
) -> None:
    url, kept = received
    config = tmp_path / "fleet.yaml"
    config.write_text(
        "alerts:\n  console_url: https://ops.example.test/console\n"
        f"  webhooks:\n    - url: {url}\n      secret: {SECRET}\n"
    )
    env = documented_env(
        broker_url=redis_server.url.rsplit("/", 1)[0] + f"/{DB}",
        database_url=database_url,
        config=str(config),
        log_dir=str(tmp_path / "log"),
        report_dir=str(tmp_path / "reports"),
    )
    worker = WorkerProcess("agents", name="approvals", environ=env, log_path=tmp_path / "worker.out").start()
    try:
        # When a run asks to be approved before it executes
        ran = run_agent("run", "compute 2+3", "-o", "require_approval=true", "--no-wait", "--json", env=env)
        assert ran.returncode == 0, ran.stderr
        run_id = json.loads(ran.stdout)["run_id"]
        # Then the webhook receives one signed approval.requested naming the run, with the console's link to it
        wait_for(lambda: kept, timeout=90, interval=0.2, what=f"the approval request: {worker.tail()}")
        (request,) = kept
        assert request["type"] == "approval.requested"
        assert request["data"]["run_id"] == run_id
        assert request["data"]["link"] == f"https://ops.example.test/console/runs/{run_id}"
        assert "2+3" in request["data"]["request"]
    finally:
        worker.stop()
