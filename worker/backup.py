"""`agent backup` and `agent restore`: a consistent, engine-neutral copy of the database and the report files.

A backup is a gzip tar archive: `manifest.json` (format, schema revisions, rows and sha256 of every member),
`tables/<table>.jsonl` (one JSON object per row, in primary-key order) and `reports/<file>`. Rows are read in
one snapshot (SQLite's online backup API; a REPEATABLE READ, READ ONLY transaction on PostgreSQL), and they are
plain JSON, so a SQLite backup restores into PostgreSQL and back.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from worker.backup_archive import (
    FORMAT,
    FORMAT_VERSION,
    BackupError,
    BackupInvalid,
    RestoreRefused,
    SchemaMismatch,
    sha256_of,
    unpack,
)
from worker.backup_rows import decode_rows, null_columns, null_flag, row_encoder
from worker.db import Base, make_engine

# Rows per INSERT round trip on restore: large enough to be quick, small enough to bound memory.
BATCH = 1000


@dataclass(frozen=True)
class Summary:
    """What a backup holds, or what a restore wrote."""

    path: Path
    revisions: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0


def tables() -> list[Table]:
    """Every table of the fleet, parents before children."""
    import worker.models  # noqa: F401  (fills Base.metadata)

    return list(Base.metadata.sorted_tables)


def migration_heads(url: str) -> list[str]:
    """The head revisions of this fleet's migrations: the schema every backup and restore must be at."""
    from alembic.script import ScriptDirectory

    from worker.migrate import alembic_config

    return sorted(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def _applied(connection: Connection) -> list[str]:
    from alembic.runtime.migration import MigrationContext

    return sorted(MigrationContext.configure(connection).get_current_heads())


@contextmanager
def _snapshot(url: str, folder: Path) -> Iterator[Connection]:
    """A connection that sees one instant of the database while other processes keep writing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # The online backup API copies a consistent image, WAL included; the rows are then read from the copy.
        if not Path(parsed.database or "").is_file():
            raise BackupError(f"no database at {parsed.database}: check FLEET_DATABASE_URL")
        copy = folder / "snapshot.db"
        try:
            source = sqlite3.connect(parsed.database or "", timeout=30)
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        except sqlite3.Error as exc:
            raise BackupError(f"cannot copy the database {parsed.database}: {exc}") from None
        engine = make_engine(f"sqlite:///{copy}")
        options: dict[str, Any] = {}
    else:
        engine = make_engine(url)
        options = {"isolation_level": "REPEATABLE READ"}
    try:
        with engine.connect().execution_options(**options) as connection:
            if options:
                connection.execute(text("SET TRANSACTION READ ONLY"))
            yield connection
    finally:
        engine.dispose()


def _dump_table(connection: Connection, table: Table, target: Path) -> int:
    flags = [table.c[name].is_(None).label(null_flag(name)) for name in null_columns(table)]
    statement = select(table, *flags).order_by(*table.primary_key.columns)
    encode = row_encoder(table)
    count = 0
    with target.open("w", encoding="utf-8") as out:
        for row in connection.execution_options(yield_per=BATCH).execute(statement):
            out.write(json.dumps(encode(row), ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def _report_files(report_dir: Path) -> list[Path]:
    if not report_dir.is_dir():
        return []
    return sorted(p for p in report_dir.rglob("*") if p.is_file() and not p.is_symlink())


def backup(path: Path, url: str, report_dir: Path) -> Summary:
    """Write a backup of the database at `url` and the files in `report_dir` to `path` (replaced atomically)."""
    heads = migration_heads(url)
    with tempfile.TemporaryDirectory(prefix="fleet-backup-") as tmp:
        staging = Path(tmp)
        (staging / "tables").mkdir()
        with _snapshot(url, staging) as connection:
            revisions = _applied(connection)
            if revisions != heads:
                raise SchemaMismatch(
                    f"the database is at revisions {revisions or ['(none)']}, this fleet's migrations at {heads}: "
                    "run `agent db upgrade` first"
                )
            rows = {t.name: _dump_table(connection, t, staging / "tables" / f"{t.name}.jsonl") for t in tables()}
        members = [f"tables/{name}.jsonl" for name in rows]
        for source in _report_files(report_dir):
            name = "reports/" + source.relative_to(report_dir).as_posix()
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / name)
            members.append(name)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "engine": make_url(url).get_backend_name(),
            "revisions": revisions,
            "rows": rows,
            "sha256": {name: sha256_of(staging / name) for name in members},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        partial = path.with_name(path.name + ".partial")
        # Owner-only: the archive holds every row, API key hashes included.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
                for name in ["manifest.json", *members]:
                    archive.add(staging / name, arcname=name, recursive=False)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return Summary(path, revisions, rows, len(members) - len(rows))


def _occupied(connection: Connection) -> dict[str, int]:
    counts = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one() for t in tables()}
    return {name: count for name, count in counts.items() if count}


def _load_table(connection: Connection, table: Table, source: Path, expected: int) -> int:
    """Insert a table's rows; ValueError when they are not the rows the manifest counts."""
    count = 0
    with source.open(encoding="utf-8") as lines:
        for statement, batch in decode_rows(table, lines, BATCH):
            connection.execute(statement, batch)
            count += len(batch)
    if count != expected:
        raise ValueError(f"table {table.name}: {count} rows where the manifest says {expected}")
    return count


def _reset_sequences(connection: Connection) -> None:
    """PostgreSQL: each id sequence continues after the restored ids (SQLite takes the largest id by itself)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables():
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or columns[0].type.python_type is not int:
            continue
        following = func.coalesce(select(func.max(columns[0])).scalar_subquery(), 0) + 1
        sequence = func.pg_get_serial_sequence(table.name, columns[0].name)
        connection.execute(select(func.setval(sequence, following, False)))


def _conflicting_files(folder: Path, report_dir: Path) -> list[str]:
    staged = _report_files(folder / "reports")
    targets = [(source, report_dir / source.relative_to(folder / "reports")) for source in staged]
    return [str(t) for s, t in targets if t.exists() and t.read_bytes() != s.read_bytes()]


def restore(path: Path, url: str, report_dir: Path, force: bool = False) -> Summary:
    """Restore a backup into the database at `url` (created and migrated if empty) and `report_dir`."""
    from worker.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="fleet-restore-") as tmp:
        staging = Path(tmp)
        manifest = unpack(path, staging, {t.name for t in tables()})
        heads = migration_heads(url)
        if sorted(manifest["revisions"]) != heads:
            raise SchemaMismatch(
                f"{path} was made at schema revisions {manifest['revisions']}, this fleet's migrations are at "
                f"{heads}: restore it with the fleet version that made it"
            )
        try:
            upgrade(url)
        except CommandError as exc:  # the database is at a revision these migrations do not know
            raise SchemaMismatch(f"cannot bring the database to this fleet's schema: {exc}") from None
        engine = make_engine(url)
        try:
            with engine.begin() as connection:
                occupied = _occupied(connection)
                conflicts = _conflicting_files(staging, report_dir)
                if (occupied or conflicts) and not force:
                    held = ", ".join(f"{name} {count}" for name, count in sorted(occupied.items()))
                    what = f"rows ({held})" if occupied else f"other report files ({', '.join(conflicts[:3])})"
                    raise RestoreRefused(f"the database already holds {what}: restore with --force to replace it")
                for table in reversed(tables()):
                    connection.execute(table.delete())
                rows = {
                    t.name: _load_table(connection, t, staging / "tables" / f"{t.name}.jsonl", manifest["rows"][t.name])
                    for t in tables()
                }
                _reset_sequences(connection)
        except (IntegrityError, DataError) as exc:
            raise BackupInvalid(f"{path}: rows that do not fit the schema ({exc.orig})") from None
        except StatementError as exc:
            if isinstance(exc, DBAPIError):
                raise  # the database stopped answering: not the file's fault
            raise BackupInvalid(f"{path}: rows that do not fit the schema ({exc.orig})") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupInvalid(f"{path}: rows that do not fit the schema ({exc})") from None
        finally:
            engine.dispose()
        files = _report_files(staging / "reports")
        for source in files:
            target = report_dir / source.relative_to(staging / "reports")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target.with_name(target.name + ".partial"))
            os.replace(target.with_name(target.name + ".partial"), target)
    return Summary(path, list(manifest["revisions"]), rows, len(files))
