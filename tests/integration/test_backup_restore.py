"""`agent backup` and `agent restore` with a real worker: the database is lost, restored, and the producers'
re-sent events bring the shadow ledger back to exact balances; runs after the backup are reported missing.

The fleet here has its own broker database (no other test's worker takes its messages), database and report
folder. PostgreSQL (and restores across engines) when FLEET_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from tests.support import WorkerProcess, run_agent
from worker.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _agent(env: dict[str, str], *args: str) -> Any:
    done = run_agent(*args, env=env, timeout=300)
    assert done.returncode == 0, f"agent {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def _balances(url: str) -> dict[str, tuple[str, int, bool]]:
    from worker.db import make_engine
    from worker.ledger.models import LedgerAccount

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(LedgerAccount)).all()
    finally:
        engine.dispose()
    return {row.account: (row.balance, row.last_sequence, row.closed) for row in rows}


def _tables(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.name != "manifest.json"}  # type: ignore[union-attr]


class Fleet:
    """A fleet of its own: broker database (no other test's worker takes its messages), database, report folder."""

    def __init__(self, redis_server: RedisServer, folder: Path, database_url: str) -> None:
        self.reports = folder / "reports"
        self.env = {
            "FLEET_BROKER_URL": redis_server.url.rsplit("/", 1)[0] + "/7",
            "FLEET_DATABASE_URL": database_url,
            "FLEET_REPORT_DIR": str(self.reports),
        }
        self.worker: WorkerProcess | None = None

    def start_worker(self) -> None:
        """One worker on every queue (it is waited for by the first command that waits for a result)."""
        self.worker = WorkerProcess(name=f"backup-{uuid.uuid4().hex[:6]}", env=self.env).start()

    def stop_worker(self) -> None:
        """A warm shutdown of the worker."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def lose_everything(self) -> None:
        """The database and the report files are gone: an empty database is all that is left."""
        url = make_url(self.env["FLEET_DATABASE_URL"])
        if url.get_backend_name() == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{url.database}{suffix}").unlink(missing_ok=True)
        else:
            _recreate(url.database or "")
        shutil.rmtree(self.reports)


def _admin() -> Any:
    from worker.db import make_engine

    return make_engine(os.environ["FLEET_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")


def _recreate(name: str) -> None:
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def idle_fleet(request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path) -> Iterator[Fleet]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fleet.db'}"
    else:
        from tests.conftest import _postgres_wanted

        name = f"fleet_backup_{uuid.uuid4().hex[:8]}"
        url = make_url(_postgres_wanted()).set(database=name).render_as_string(hide_password=False)
        _recreate(name)
    fleet = Fleet(redis_server, tmp_path, url)
    _agent(fleet.env, "db", "upgrade")
    yield fleet
    fleet.stop_worker()
    if request.param == "postgres":
        admin = _admin()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fleet(idle_fleet: Fleet) -> Fleet:
    idle_fleet.start_worker()
    return idle_fleet


def test_a_lost_database_is_restored_and_resent_events_end_at_exact_balances(fleet: Fleet, tmp_path: Path) -> None:
    env, url, reports = fleet.env, fleet.env["FLEET_DATABASE_URL"], fleet.reports
    stream = _agent(env, "ledger", "generate", "--events", "80", "--seed", "23").stdout.splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(stream[:50]))
    second.write_text("".join(stream[50:]))
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(stream))

    # Given a fleet with ledger state, a finished run, an API key and a report
    _agent(env, "ledger", "submit", str(first), "--wait", "--json")
    kept = json.loads(_agent(env, "run", "compute (12+30)*2", "--json").stdout)
    _agent(env, "keys", "create", "--name", "ops", "--scope", "read")
    _agent(env, "report", "--json")
    keys = json.loads(_agent(env, "keys", "list", "--json").stdout)
    balances_at_backup = _balances(url)
    files_at_backup = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert balances_at_backup and files_at_backup

    # When it is backed up, and more traffic follows
    backup = tmp_path / "fleet-backup.tar.gz"
    made = _agent(env, "backup", str(backup))
    assert f"written to {backup}" in made.stdout
    _agent(env, "ledger", "submit", str(second), "--wait", "--json")
    lost_run = json.loads(_agent(env, "run", "compute 6*7", "--json").stdout)
    balances_before_loss = _balances(url)
    assert balances_before_loss != balances_at_backup

    # And the database and the report files are lost, then restored while the fleet is stopped (docs/operations.md)
    fleet.stop_worker()
    fleet.lose_everything()
    restored = _agent(env, "restore", str(backup))
    assert "restored" in restored.stdout
    fleet.start_worker()

    # Then the ledger, the keys and the report files are those of the backup, byte for byte
    assert _balances(url) == balances_at_backup
    assert json.loads(_agent(env, "keys", "list", "--json").stdout) == keys
    assert {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()} == files_at_backup
    again = tmp_path / "again.tar.gz"
    _agent(env, "backup", str(again))
    assert _tables(again) == _tables(backup)

    # And the run from before the backup is there, the one after it is reported missing
    assert json.loads(_agent(env, "status", kept["run_id"], "--json").stdout)["status"] == "succeeded"
    missing = run_agent("status", lost_run["run_id"], env=env)
    assert missing.returncode == 2 and lost_run["run_id"] in missing.stderr and "Traceback" not in missing.stderr

    # When the producers re-send every event since before the backup
    done = run_agent("ledger", "submit", str(whole), "--wait", "--json", env=env)
    resent = json.loads(done.stdout)

    # Then those the backup holds are duplicates, the rest are processed again, and the balances are exact
    assert resent["summary"]["duplicates"] >= 50, resent["summary"]
    assert _balances(url) == balances_before_loss


def test_restore_refuses_a_database_that_holds_data_unless_forced(idle_fleet: Fleet, tmp_path: Path) -> None:
    env = idle_fleet.env
    _agent(env, "keys", "create", "--name", "first", "--scope", "read")
    backup = tmp_path / "b.tar.gz"
    _agent(env, "backup", str(backup))
    _agent(env, "keys", "create", "--name", "second", "--scope", "read")

    # When restored over the database that holds data, Then it is refused, one line, exit 2, nothing changed
    refused = run_agent("restore", str(backup), env=env)
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert len(json.loads(_agent(env, "keys", "list", "--json").stdout)) == 2
    # And an existing backup file is not overwritten without --force
    assert run_agent("backup", str(backup), env=env).returncode == 2

    # When forced, Then the database is the backup's
    _agent(env, "restore", str(backup), "--force")
    assert [k["name"] for k in json.loads(_agent(env, "keys", "list", "--json").stdout)] == ["first"]
