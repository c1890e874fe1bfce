"""The backup archive: a gzip tar of a manifest and members, each checked against the manifest's sha256."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from worker.errors import FleetError

FORMAT = "agent-fleet-backup"
FORMAT_VERSION = 1


class BackupError(FleetError):
    """The backup could not be made or restored."""


class BackupInvalid(BackupError):
    """The file is not a fleet backup, or it is damaged."""


class RestoreRefused(BackupError):
    """The database already holds data: restore with --force to replace it."""


class SchemaMismatch(BackupError):
    """The backup's schema revisions are not this fleet's migrations."""


def sha256_of(path: Path) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_member(name: str, known_tables: set[str]) -> bool:
    parts = PurePosixPath(name).parts
    if name == "manifest.json":
        return True
    if len(parts) == 2 and parts[0] == "tables":
        return parts[1].removesuffix(".jsonl") in known_tables and parts[1].endswith(".jsonl")
    return len(parts) >= 2 and parts[0] == "reports" and not any(p in {"..", ".", ""} for p in parts)


def unpack(path: Path, folder: Path, known: set[str]) -> dict[str, Any]:
    """Extract and check the archive: only known, regular members, each matching the manifest's sha256."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive:
                if not member.isfile() or not _safe_member(member.name, known):
                    raise BackupInvalid(f"{path}: unexpected member {member.name!r}: not a fleet backup")
                source = archive.extractfile(member)
                assert source is not None  # a regular file always has its bytes
                target = folder / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except FileNotFoundError:
        raise BackupInvalid(f"no backup at {path}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupInvalid(f"{path} is not a fleet backup or is damaged ({exc})") from None
    if not (folder / "manifest.json").is_file():
        raise BackupInvalid(f"{path} is not a fleet backup (no manifest)")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise BackupInvalid(f"{path} is not a fleet backup (no {FORMAT} manifest)")
        if manifest.get("version") != FORMAT_VERSION:
            raise BackupInvalid(f"{path} is backup format {manifest.get('version')}; this fleet reads {FORMAT_VERSION}")
        expected: dict[str, str] = manifest["sha256"]
        present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
        if present != set(expected) or any(sha256_of(folder / name) != digest for name, digest in expected.items()):
            raise BackupInvalid(f"{path} is damaged: its members do not match their checksums")
        if set(manifest["rows"]) != known:
            raise BackupInvalid(f"{path} holds tables {sorted(manifest['rows'])}, this fleet has {sorted(known)}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupInvalid(f"{path} has no readable manifest ({exc})") from None
    return dict(manifest)
