"""A quiet event stream gets a comment line every 15 s, so proxies keep it open."""

from __future__ import annotations

import subprocess
import time
import uuid

import httpx
import pytest

from gateway.sse import HEARTBEAT_S
from tests.e2e.conftest import AGENT, ApiServer
from tests.e2e.test_api_http import _bearer, _create_key
from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_quiet_run_stream_sends_a_heartbeat_comment(api_server: ApiServer) -> None:
    key = _create_key("--name", "e2e-heartbeat", "--scope", "admin")
    # Given a workflow sent to a queue no worker reads: its stream has nothing to say
    request = {"input": "compute 1+1", "mode": "planner", "profile": "local",
               "options": {"queue": f"agents-nobody{uuid.uuid4().hex[:6]}"}}  # fmt: skip
    lines: list[str] = []
    started = time.monotonic()
    try:
        with httpx.stream(
            "POST", api_server.url + "/api/v1/agent/run/stream", json=request, headers=_bearer(key), timeout=60
        ) as stream:
            # When a client listens for a little longer than the heartbeat period
            for line in stream.iter_lines():
                lines.append(line)
                if line.startswith(":") or time.monotonic() - started > HEARTBEAT_S + 20:
                    break
    finally:
        subprocess.run([AGENT, "keys", "revoke", key["key_id"]], cwd=ROOT, capture_output=True, check=True)
    # Then after the run's first event comes a comment line, and no data frame in between
    assert lines[0].startswith("id: ") and "event: run" in lines
    assert lines[-1] == ": heartbeat"
    assert not [line for line in lines if line.startswith("data: ") and '"run_id"' not in line]
