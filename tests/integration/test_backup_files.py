"""Backup archives: exact round trips on SQLite (and PostgreSQL, across engines), one snapshot while writers
write, and hostile files (damaged, truncated, crafted) that end in one clear error with nothing written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, null, select, text

from worker.agents.models import AgentRun
from worker.backup import BackupInvalid, SchemaMismatch, backup, restore
from worker.db import make_engine
from worker.ledger.models import LedgerAccount
from worker.migrate import upgrade
from worker.models.core import AuditEvent, DeadLetter
from worker.reports.models import StatusReport

pytestmark = pytest.mark.integration


def _sqlite(folder: Path) -> str:
    return f"sqlite:///{folder / f'fleet-{uuid.uuid4().hex[:6]}.db'}"


def _populate(url: str) -> None:
    """Rows of every kind of value: times, dates, bytes, floats, text beyond ASCII, SQL NULL and JSON null."""
    upgrade(url)
    engine = make_engine(url)
    at = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
    rows: dict[type, list[dict[str, object]]] = {
        AgentRun: [
            {"run_id": "r-sql-null", "status": "pending", "request": {"input": "한국어 ✓"}, "output": null()},
            {"run_id": "r-json-null", "status": "succeeded", "request": {}, "output": None, "created_at": at},
            {"run_id": "r-value", "status": "succeeded", "request": {"n": 1}, "output": {"x": [1, 2.5, None]}},
        ],
        DeadLetter: [
            {"reason": "junk", "raw": b"\x00\xff\x80binary", "raw_size": 9, "at": at},
            {"reason": "poison", "raw": None, "detail": 'line\nbreak "quoted"'},
        ],
        LedgerAccount: [
            {
                "account": "acc-1",
                "currency": "EUR",
                "overdraft_limit": "0",
                "balance": "1234.5678",
                "last_timestamp": at,
                "baseline": {"mean": 0.1 + 0.2},
            }
        ],
        StatusReport: [{"report_date": date(2026, 11, 20), "health": "ok", "markdown": "# 보고서\n", "figures": {}}],
    }
    with engine.begin() as connection:
        for model, values in rows.items():
            for row in values:
                connection.execute(insert(model).values(row))
    engine.dispose()


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _tables(archive: Path) -> dict[str, bytes]:
    return {name: data for name, data in _members(archive).items() if name.startswith("tables/")}


def _rows(url: str) -> int:
    from worker.backup import tables

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return sum(connection.execute(select(func.count()).select_from(t)).scalar_one() for t in tables())
    finally:
        engine.dispose()


def _sql_nulls(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(AgentRun.run_id).where(AgentRun.output.is_(null()))).scalars())
    finally:
        engine.dispose()


def _archive(members: dict[str, bytes], manifest: dict[str, object] | None = None, with_manifest: bool = True) -> bytes:
    """A gzip tar of `members` whose manifest has their true checksums (so only the content is wrong)."""
    body = dict(manifest or json.loads(members["manifest.json"]))
    body["sha256"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "manifest.json"}
    if with_manifest:
        members = {**members, "manifest.json": json.dumps(body).encode()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of a populated SQLite database, with one report file."""
    folder = tmp_path_factory.mktemp("made")
    url = _sqlite(folder)
    _populate(url)
    (folder / "reports").mkdir()
    (folder / "reports" / "2026-11-20.md").write_text("# 보고서\n", encoding="utf-8")
    archive = folder / "fleet.tar.gz"
    backup(archive, url, folder / "reports")
    return archive


def test_a_restored_database_backs_up_to_the_same_rows_byte_for_byte(made: Path, tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    summary = restore(made, url, tmp_path / "reports")
    assert summary.rows["agent_runs"] == 3 and summary.files == 1
    again = tmp_path / "again.tar.gz"
    backup(again, url, tmp_path / "reports")
    assert _tables(again) == _tables(made)
    # SQL NULL stays SQL NULL, JSON null stays JSON null; bytes stay bytes
    assert _sql_nulls(url) == ["r-sql-null"]
    assert (tmp_path / "reports" / "2026-11-20.md").read_text(encoding="utf-8") == "# 보고서\n"
    assert oct(made.stat().st_mode & 0o777) == "0o600"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database on SQLite, and on PostgreSQL when FLEET_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return str(request.getfixturevalue("fresh_postgres"))


def test_a_backup_is_one_snapshot_while_a_writer_keeps_writing(any_engine: str, tmp_path: Path) -> None:
    # Given a writer that adds an audit event and a dead letter in each transaction, never one without the other
    url = any_engine
    upgrade(url)
    engine = make_engine(url)
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            with engine.begin() as connection:
                connection.execute(insert(AuditEvent).values(category="test", action="pair"))
                connection.execute(insert(DeadLetter).values(reason="pair"))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # When backups are taken while it writes
        archives = []
        for n in range(3):
            archives.append(tmp_path / f"b{n}.tar.gz")
            backup(archives[-1], url, tmp_path / "reports")
    finally:
        stop.set()
        writer.join()
        engine.dispose()
    # Then each holds as many audit events as dead letters
    for archive in archives:
        manifest = json.loads(_members(archive)["manifest.json"])
        assert manifest["rows"]["audit_events"] == manifest["rows"]["dead_letters"]
    assert manifest["rows"]["audit_events"] > 0  # the writer did write while the backups ran


@given(
    how=st.sampled_from(["flip", "truncate", "overwrite"]),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    byte=st.integers(min_value=1, max_value=255),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_archive_is_refused_or_restores_exactly(made: Path, how: str, where: float, byte: int) -> None:
    data = bytearray(made.read_bytes())
    at = int(where * len(data))
    if how == "flip":
        data[at] ^= byte
    elif how == "truncate":
        del data[at:]
    else:
        data[at : at + 64] = bytes([byte]) * len(data[at : at + 64])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "damaged.tar.gz").write_bytes(bytes(data))
        url = _sqlite(folder)
        try:
            restore(folder / "damaged.tar.gz", url, folder / "reports")
        except BackupInvalid as exc:
            assert "damaged.tar.gz" in str(exc)
            assert not (folder / "reports").exists()
            assert not Path(url.removeprefix("sqlite:///")).exists() or _rows(url) == 0
            return
        # A change the archive does not depend on (a gzip header's time stamp): the restore is exact
        backup(folder / "again.tar.gz", url, folder / "reports")
        assert _tables(folder / "again.tar.gz") == _tables(made)


def _crafted(members: dict[str, bytes]) -> list[tuple[str, bytes]]:
    manifest = json.loads(members["manifest.json"])
    runs = members["tables/agent_runs.jsonl"]
    bad_row = runs.replace(b'"run_id"', b'"no_such_column": 1, "run_id"', 1)
    bad_time = runs.replace(b'"created_at": "2026', b'"created_at": "yesterday', 1).replace(b"yesterday-", b"yesterday")
    return [
        ("an unknown column", _archive({**members, "tables/agent_runs.jsonl": bad_row})),
        ("a time that is none", _archive({**members, "tables/agent_runs.jsonl": bad_time})),
        ("a row that is no object", _archive({**members, "tables/agent_runs.jsonl": b"[1, 2]\n"})),
        ("a member outside", _archive({**members, "reports/../../escape.md": b"x"})),
        ("another format", _archive(members, {**manifest, "format": "something-else"})),
        ("no manifest", _archive({k: v for k, v in members.items() if k != "manifest.json"}, manifest, False)),
        ("a row count that lies", _archive(members, {**manifest, "rows": {**manifest["rows"], "agent_runs": 4}})),
    ]


def test_crafted_archives_are_refused_with_nothing_written(made: Path, tmp_path: Path) -> None:
    for what, data in _crafted(_members(made)):
        folder = tmp_path / uuid.uuid4().hex[:6]
        folder.mkdir()
        (folder / "crafted.tar.gz").write_bytes(data)
        url = _sqlite(folder)
        with pytest.raises(BackupInvalid, match=r"crafted\.tar\.gz"):
            restore(folder / "crafted.tar.gz", url, folder / "reports")
        assert not Path(url.removeprefix("sqlite:///")).exists() or _rows(url) == 0, what
        assert not (tmp_path / "escape.md").exists() and not (folder / "reports").exists(), what


def test_a_symlink_in_the_archive_is_refused(made: Path, tmp_path: Path) -> None:
    out = tmp_path / "link.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        info = tarfile.TarInfo("reports/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(BackupInvalid, match="unexpected member"):
        restore(out, _sqlite(tmp_path), tmp_path / "reports")


def test_a_backup_of_other_schema_revisions_is_refused(made: Path, tmp_path: Path) -> None:
    members = _members(made)
    manifest = json.loads(members["manifest.json"])
    (tmp_path / "old.tar.gz").write_bytes(_archive(members, {**manifest, "revisions": ["0001"]}))
    with pytest.raises(SchemaMismatch, match="0001"):
        restore(tmp_path / "old.tar.gz", _sqlite(tmp_path), tmp_path / "reports")


def test_a_database_not_at_this_fleets_schema_is_not_backed_up(tmp_path: Path) -> None:
    from worker.backup import BackupError

    url = _sqlite(tmp_path)
    with pytest.raises(BackupError, match="no database at"):
        backup(tmp_path / "none.tar.gz", url, tmp_path / "reports")
    assert not Path(url.removeprefix("sqlite:///")).exists()
    upgrade(url, "0001")
    with pytest.raises(SchemaMismatch, match="agent db upgrade"):
        backup(tmp_path / "old.tar.gz", url, tmp_path / "reports")
    assert not (tmp_path / "old.tar.gz").exists()


def test_a_bad_file_is_one_line_and_exit_2_from_the_cli(tmp_path: Path) -> None:
    from tests.support import run_agent

    (tmp_path / "notes.txt").write_text("not a backup")
    env = {"FLEET_DATABASE_URL": _sqlite(tmp_path), "FLEET_REPORT_DIR": str(tmp_path / "reports")}
    for path in (tmp_path / "notes.txt", tmp_path / "missing.tar.gz"):
        done = run_agent("restore", str(path), env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database (no migration: restore makes the schema); needs FLEET_TEST_POSTGRES_URL."""
    from sqlalchemy.engine import make_url

    from tests.conftest import _postgres_wanted

    server_url = _postgres_wanted()
    name = f"fleet_restore_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_a_sqlite_backup_restores_into_postgresql_and_back(made: Path, fresh_postgres: str, tmp_path: Path) -> None:
    # When a SQLite backup is restored into PostgreSQL and PostgreSQL's backup into a new SQLite database
    restore(made, fresh_postgres, tmp_path / "pg-reports")
    from_postgres = tmp_path / "pg.tar.gz"
    backup(from_postgres, fresh_postgres, tmp_path / "pg-reports")
    back = _sqlite(tmp_path)
    restore(from_postgres, back, tmp_path / "back-reports")
    again = tmp_path / "again.tar.gz"
    backup(again, back, tmp_path / "back-reports")
    # Then every row is the same on both engines, SQL NULL included
    assert _tables(from_postgres) == _tables(made) == _tables(again)
    assert _sql_nulls(fresh_postgres) == ["r-sql-null"]
    assert json.loads(_members(from_postgres)["manifest.json"])["engine"] == "postgresql"
    # And PostgreSQL's id sequences continue after the restored ids
    engine = make_engine(fresh_postgres)
    with engine.begin() as connection:
        connection.execute(insert(DeadLetter).values(reason="after restore"))
    engine.dispose()
    assert os.environ.get("FLEET_TEST_POSTGRES_URL")
