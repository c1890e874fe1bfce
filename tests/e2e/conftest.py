"""The API as an operator runs it: `agent api --port N` (real uvicorn) in front of the session worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, wait_for
from worker.redis_server import free_port

AGENT = str(Path(sys.executable).parent / "agent")


class ApiServer:
    """A running `agent api` subprocess and the URL it answers on."""

    def __init__(
        self, config_path: Path, log_path: Path, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "FLEET_CONFIG": str(config_path), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiServer:
        """Start uvicorn and wait until /health/live answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [AGENT, "api", "--port", str(self.port), *self.extra], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        wait_for(self._live, timeout=60, what=f"agent api on {self.url}: {self.tail()}")
        return self

    def _live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"agent api exited with {self.process.returncode}: {self.tail()}")
        try:
            return httpx.get(self.url + "/health/live", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def tail(self, lines: int = 30) -> str:
        """The last lines uvicorn and the API logged."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn shuts down gracefully)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


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
