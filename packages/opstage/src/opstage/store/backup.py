"""SQLite backup and restore: the mechanics behind ``app.backup``'s port and the CLI.

Backup uses SQLite's online backup API in a single step (``pages=-1``): the copy is made inside
one read transaction, so it is the database exactly as of that transaction's start, and in WAL
mode writers keep committing while it runs (a stepped backup would instead restart whenever
another connection writes, and might never finish under a steady write load). The copy is then
switched to ``journal_mode=DELETE`` — one self-contained file — and checked with ``quick_check``.

Restore never writes into a database in place: it copies the backup to a temporary file next to
the target, checks it, moves the current database (and its ``-wal``/``-shm``) aside, and renames
the copy into place. A server still running on the old file would keep writing to its (renamed)
file, so restore takes the database's lock exclusively and refuses while any Opstage process
holds it (``store/db_lock.py``).

PostgreSQL has ``pg_dump`` / ``pg_restore``; nothing here pretends otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opstage.store.db_lock import exclusive
from opstage.store.engine import sqlite_path

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000


class BackupError(Exception):
    """A backup or restore could not be made; the message says why, in one line."""


def _connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def _quick_check(conn: sqlite3.Connection) -> None:
    row = conn.execute("PRAGMA quick_check").fetchone()
    if row is None or row[0] != "ok":
        raise BackupError(f"integrity check failed: {row[0] if row else 'no answer'}")


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _copy(src: sqlite3.Connection, destination: Path, failure: str) -> None:
    """SQLite's online backup of ``src`` into a self-contained, checked file (closes ``src``)."""
    try:
        dst = _connect(destination)
        try:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")
            _quick_check(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            destination.unlink()
        raise BackupError(f"{failure}: {exc}") from exc
    finally:
        src.close()


@dataclass(frozen=True)
class SqliteBackup:
    """The backup port for a SQLite database file (``app.backup.DatabaseBackup``)."""

    database: Path

    def check_supported(self) -> None:
        """SQLite's online backup API is always there."""

    def copy_to(self, destination: Path) -> None:
        """Write a consistent, checked, self-contained copy of the live database."""
        if not self.database.exists():
            raise BackupError(f"database file {self.database} does not exist")
        _copy(_connect(self.database), destination, "SQLite backup failed")


def backup_for(database_url: str) -> SqliteBackup | None:
    """The backup port for this database, or None when the engine has its own tools."""
    path = sqlite_path(database_url)
    if path is None or path == ":memory:":
        return None
    return SqliteBackup(Path(path))


@dataclass(frozen=True)
class RestoreResult:
    target: Path
    revision: str | None
    previous: Path | None  # where the database that was replaced now lives


def inspect_backup(source: Path) -> str | None:
    """Check that ``source`` is a sound SQLite file; return its schema revision (if any)."""
    try:
        with source.open("rb") as f:
            magic = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if magic != SQLITE_MAGIC:
        raise BackupError(f"{source} is not a SQLite database file")
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        _quick_check(conn)
        return _revision(conn)
    except sqlite3.Error as exc:
        raise BackupError(f"{source} cannot be read as a database: {exc}") from exc
    finally:
        conn.close()


def restore_sqlite(
    source: Path,
    target: Path,
    *,
    replace: bool,
    progress: Callable[[str], None] = lambda _: None,
) -> RestoreResult:
    """Put a copy of the backup ``source`` at ``target`` (moving any existing database aside).

    Holds ``target``'s lock exclusively throughout (``store/db_lock.py``): a running server or
    command refuses the restore (``DatabaseInUse``), and none starts until it is done.
    """
    if target.exists() and not replace:
        raise BackupError(
            f"{target} already exists; stop the server and pass --force to replace it "
            "(the current file is kept next to it)"
        )
    with exclusive(target):
        return _restore(source, target, progress)


def _restore(source: Path, target: Path, progress: Callable[[str], None]) -> RestoreResult:
    progress(f"checking {source} (integrity and schema)")
    revision = inspect_backup(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".restoring")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    progress(f"copying it to {staging.name}")
    _copy(sqlite3.connect(f"file:{source}?mode=ro", uri=True), staging, "restore failed")
    previous = None
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        previous = target.with_name(f"{target.name}.pre-restore-{stamp}")
        os.replace(target, previous)
        for suffix in ("-wal", "-shm"):
            side = target.with_name(target.name + suffix)
            if side.exists():
                os.replace(side, previous.with_name(previous.name + suffix))
        progress(f"moved the current database aside to {previous.name}")
    os.replace(staging, target)
    progress(f"put the copy in place at {target}")
    return RestoreResult(target, revision, previous)
