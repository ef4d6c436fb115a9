"""Online backup of the embedded SQLite database, owner-only, audited.

The copy itself is the store's business (``store.backup``), reached through the small
``DatabaseBackup`` port that the runtime puts on the context; this module picks the file name,
writes to a ``.partial`` name first (a half-written backup never looks complete), records size
and SHA-256, and audits ``backup.sqlite.created``. On PostgreSQL the runtime puts
:class:`NoOnlineBackup` on the context instead: it answers ``BACKUP_UNSUPPORTED_ENGINE`` naming
``pg_dump``, the tool made for it, before anything is written (ADR 0010: no use case asks which
engine it runs on).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.domain.errors import DomainError
from opstage.settings import Settings

UNSUPPORTED = "BACKUP_UNSUPPORTED_ENGINE"


class DatabaseBackup(Protocol):
    def check_supported(self) -> None:
        """Raise the contract's answer when this engine has no online backup through Opstage."""
        ...

    def copy_to(self, destination: Path) -> None:
        """Blocking: write a consistent, checked copy of the live database to ``destination``."""
        ...


class BackupContext(UnitContext, Protocol):
    """What a backup uses beyond units of work (``AppContext`` is one; ADR 0010)."""

    backup: DatabaseBackup


@dataclass(frozen=True, slots=True)
class BackupFile:
    path: Path
    name: str
    size_bytes: int
    sha256: str
    created_at: datetime


def unsupported(kind: str) -> DomainError:
    return DomainError(
        "Online backup through Opstage is for the embedded SQLite database. This server runs on "
        "PostgreSQL: back it up with pg_dump (e.g. `pg_dump --format=custom --file=opstage.dump "
        "$DATABASE_URL`) and restore with pg_restore.",
        code=UNSUPPORTED,
        details={"engine": kind, "tool": "pg_dump"},
    )


@dataclass(frozen=True, slots=True)
class NoOnlineBackup:
    """The backup port of an engine with its own tools (PostgreSQL: ``pg_dump``), or of an
    in-memory database: every backup is refused with the contract's answer."""

    engine: str

    def check_supported(self) -> None:
        raise unsupported(self.engine)

    def copy_to(self, destination: Path) -> None:
        raise unsupported(self.engine)


def backup_directory(ctx: UnitContext) -> Path:
    return default_backup_dir(ctx.settings)


def default_backup_dir(s: Settings) -> Path:
    return s.backup_dir if s.backup_dir is not None else s.data_dir / "backups"


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _free_name(directory: Path, now: datetime) -> str:
    base = f"opstage-{now:%Y%m%dT%H%M%S}-{now.microsecond // 1000:03d}Z"
    name, n = f"{base}.db", 1
    while (directory / name).exists() or (directory / f"{name}.partial").exists():
        n += 1
        name = f"{base}-{n}.db"
    return name


def new_backup_path(directory: Path, now: datetime) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / _free_name(directory, now)


async def copy_database(port: DatabaseBackup, destination: Path) -> tuple[int, str]:
    """Copy through ``.partial`` then rename; return the file's size and SHA-256."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    try:
        await asyncio.to_thread(port.copy_to, partial)
        os.replace(partial, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return await asyncio.to_thread(_sha256, destination)


async def create_backup(ctx: BackupContext, actor: Actor) -> BackupFile:
    """Back up the live database to a new file in the backup directory, audited."""
    port = ctx.backup
    port.check_supported()  # before the backup directory is made
    now = ctx.clock()
    destination = new_backup_path(backup_directory(ctx), now)
    size, sha256 = await copy_database(port, destination)
    async with ctx.writer() as uow:
        await write_audit(
            uow,
            actor,
            "backup.sqlite.created",
            target_type="Backup",
            target_id=destination.name,
            metadata={"fileName": destination.name, "sizeBytes": size, "sha256": sha256},
            now=now,
        )
    return BackupFile(destination, destination.name, size, sha256, now)
