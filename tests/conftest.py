"""Session-wide fixtures: a private Redis on a free port, a fresh database, a real worker."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PostgresServer, WorkerProcess
from worker.redis_server import RedisServer, free_port

# Point every FLEET_* setting at private resources before any fleet module reads them.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="fleet-tests-"))
_REDIS_PORT = free_port()
os.environ.update(
    {
        "FLEET_BROKER_URL": f"redis://127.0.0.1:{_REDIS_PORT}/0",
        "FLEET_DATABASE_URL": f"sqlite:///{_SESSION_DIR / 'fleet.db'}",
        "FLEET_LOG_DIR": str(_SESSION_DIR / "log"),
        "FLEET_REPORT_DIR": str(_SESSION_DIR / "reports"),
        "FLEET_FLOWER_AUTH": "tester:not-a-real-secret",
    }
)
for _name in ("FLEET_RESULT_BACKEND", "FLEET_CONFIG", "FLEET_API_KEYS", "FLEET_TIMEZONE"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """A folder that lives for the whole test session."""
    return _SESSION_DIR


@pytest.fixture(scope="session")
def redis_server(session_dir: Path) -> Iterator[RedisServer]:
    """A private redis-server (the bundled binary) on a free port, append-only, for this session."""
    server = RedisServer(port=_REDIS_PORT, data_dir=session_dir / "redis").start()
    yield server
    _stop_background_threads()
    server.stop()


def _stop_background_threads() -> None:
    """This process's heartbeat and telemetry threads stop before its Redis does: no failures logged at exit."""
    import sys

    if "worker.ownership" in sys.modules:
        sys.modules["worker.ownership"].stop_heart()
    if "worker.telemetry" in sys.modules:
        sys.modules["worker.telemetry"].RECORDER.stop(quiet=True)


@pytest.fixture(scope="session")
def database_url() -> str:
    """The session's SQLite database, migrated to the newest revision."""
    from worker.migrate import upgrade

    url = os.environ["FLEET_DATABASE_URL"]
    upgrade(url)
    return url


def _postgres_wanted() -> str:
    """FLEET_TEST_POSTGRES_URL; without it, skip the test (fail under CI, where it must run)."""
    server_url = os.environ.get("FLEET_TEST_POSTGRES_URL")
    if not server_url:
        if os.environ.get("CI"):
            pytest.fail("CI=true but FLEET_TEST_POSTGRES_URL is not set: PostgreSQL tests would not run")
        pytest.skip("FLEET_TEST_POSTGRES_URL is not set")
    return server_url


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this session alone (tests may stop it), its role password-protected, its database
    `fleet` migrated; under the same gate as `postgres_url`, and failing when the server binaries are missing."""
    _postgres_wanted()
    try:
        PostgresServer.find_binaries()
    except FileNotFoundError as exc:
        pytest.fail(f"FLEET_TEST_POSTGRES_URL is set, but a private cluster cannot be started: {exc}")
    from sqlalchemy import text

    from worker.db import get_engine, make_engine
    from worker.migrate import upgrade

    folder = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
    # The '/' is escaped in the URL (%2F): leak checks look for the password spelt both ways.
    server = PostgresServer(folder, free_port(), password=f"pg/{uuid.uuid4().hex[:16]}").init().start()
    admin = make_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE DATABASE fleet"))
    admin.dispose()
    upgrade(server.url("fleet"))
    yield server
    get_engine(server.url("fleet")).dispose()
    with contextlib.suppress(RuntimeError):  # already stopped by a test that failed during an outage
        server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped at the end; skipped unless FLEET_TEST_POSTGRES_URL is set."""
    server_url = _postgres_wanted()
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from worker.db import make_engine
    from worker.migrate import upgrade

    name = f"fleet_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    from worker.db import reset_engines

    reset_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def celery_app(redis_server: RedisServer):  # type: ignore[no-untyped-def]
    """The fleet's own Celery app, as a producer, pointed at the private Redis."""
    from worker import app

    return app


@pytest.fixture(scope="session")
def fleet_worker(celery_app, database_url: str) -> Iterator[WorkerProcess]:  # type: ignore[no-untyped-def]
    """One real worker process on all three queues for the whole session."""
    worker = WorkerProcess(name="session").start(celery_app)
    yield worker
    worker.stop()
