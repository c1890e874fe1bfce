"""The API as an operator runs it: `agent api --port N` (real uvicorn) in front of the session worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import AGENT, ApiServer

# Older tests import these from here.
__all__ = ["AGENT", "ApiServer"]


@pytest.fixture(scope="session")
def api_server(fleet_worker, session_dir: Path) -> Iterator[ApiServer]:  # type: ignore[no-untyped-def]
    """`agent api` on a free port, sharing the session's Redis, database and worker."""
    config = session_dir / "gateway-e2e.yaml"
    # No key cache, so a key created or revoked by a test counts at once; a small body limit for 413.
    config.write_text("gateway:\n  key_cache_s: 0\n  max_body_bytes: 65536\n  ready_timeout_s: 10\n")
    server = ApiServer(config, session_dir / "log" / "api.out").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def idle_api_server(redis_server, database_url: str, session_dir: Path) -> Iterator[ApiServer]:  # type: ignore[no-untyped-def]
    """`agent api` whose broker is a Redis database no worker reads: fuzzing it creates no real work."""
    config = session_dir / "gateway-idle.yaml"
    config.write_text("gateway:\n  key_cache_s: 0\n  wait_timeout_s: 1\n  ready_timeout_s: 1\n  stream_timeout_s: 2\n")
    idle_broker = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + "/1"
    env = {"FLEET_BROKER_URL": idle_broker, "FLEET_RESULT_BACKEND": idle_broker}
    server = ApiServer(config, session_dir / "log" / "api-idle.out", env).start()
    yield server
    server.stop()
