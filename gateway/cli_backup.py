"""`agent backup PATH` and `agent restore PATH`: the database and the report files; registered by gateway.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli_errors import EXIT_USAGE, one_line


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {one_line(message)}", err=True, fg=typer.colors.RED)
    return typer.Exit(EXIT_USAGE)


def backup(
    path: Annotated[Path, typer.Argument(dir_okay=False, help="The archive to write (a .tar.gz file).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file at PATH.")] = False,
) -> None:
    """Copy the database (one consistent snapshot) and the report files into one archive."""
    from worker.backup import backup as make_backup
    from worker.backup_archive import BackupError
    from worker.settings import get_settings, mask_url

    if path.exists() and not force:
        raise _fail(f"{path} exists: choose another path, or --force to replace it")
    settings = get_settings()
    try:
        summary = make_backup(path, settings.database_url, settings.report_dir)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"backup of {mask_url(settings.database_url)} written to {path}: {sum(summary.rows.values())} rows in "
        f"{len(summary.rows)} tables, {summary.files} report files, schema at {', '.join(summary.revisions)}"
    )


def restore(
    path: Annotated[Path, typer.Argument(dir_okay=False, help="An archive made by `agent backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace the data the database already holds.")] = False,
) -> None:
    """Restore an `agent backup` archive into FLEET_DATABASE_URL (migrated first) and FLEET_REPORT_DIR."""
    from worker.backup import restore as load_backup
    from worker.backup_archive import BackupError
    from worker.settings import get_settings, mask_url

    settings = get_settings()
    try:
        summary = load_backup(path, settings.database_url, settings.report_dir, force=force)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"restored {path} into {mask_url(settings.database_url)}: {sum(summary.rows.values())} rows in "
        f"{len(summary.rows)} tables, {summary.files} report files"
    )


def register(app: typer.Typer) -> None:
    """Add `agent backup` and `agent restore` to the `agent` CLI."""
    app.command("backup")(backup)
    app.command("restore")(restore)
