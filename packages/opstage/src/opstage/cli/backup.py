"""``opstage backup`` and ``opstage restore`` (SQLite; PostgreSQL has pg_dump/pg_restore)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import click

from opstage import __version__
from opstage.cli.common import (
    Progress,
    emit,
    json_option,
    load_settings,
    note,
    require_database,
    size_text,
    sqlite_file,
)
from opstage.settings import SettingsError


def _destination(output: str | None, default_dir: Path) -> Path:
    """Where the backup goes. A trailing slash means a directory, created when missing."""
    from opstage.app.backup import new_backup_path
    from opstage.domain.timeutil import utcnow

    if output is None:
        return new_backup_path(default_dir, utcnow())
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        return new_backup_path(path, utcnow())  # creates the directory
    return path


def _watch(partial: Path, total: int, progress: Progress, done: threading.Event) -> None:
    """Report how much of the copy is written, about once a second, until it is done."""
    while not done.wait(1.0):
        try:
            written = partial.stat().st_size
        except FileNotFoundError:
            continue
        share = min(99, int(written * 100 / total)) if total else 0
        progress.tick(f"{share}% ({size_text(written)} of about {size_text(total)})")


@click.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(),  # a str: Path() would drop the trailing slash that marks a directory
    help="File or directory to write (a trailing slash means a directory, created if need "
    "be); default: a new file in OPSTAGE_BACKUP_DIR (<data_dir>/backups).",
)
@json_option
def backup(output: str | None) -> None:
    """Back up the SQLite database online (the server may keep running).

    Prints the backup's path (--json: path, size and SHA-256). Works at any schema revision,
    e.g. right before `opstage migrate`. On PostgreSQL use pg_dump.
    """
    from opstage.app.backup import copy_database, default_backup_dir, unsupported
    from opstage.store.backup import backup_for
    from opstage.store.engine import engine_kind

    settings = load_settings()
    port = backup_for(settings.database_url)
    if port is None:
        raise unsupported(engine_kind(settings.database_url))
    require_database(settings)  # before any directory is created for the backup
    destination = _destination(output, default_backup_dir(settings))
    if destination.exists():
        raise SettingsError(f"{destination} already exists; choose another --output")
    total = sum(
        p.stat().st_size
        for p in (port.database, port.database.with_name(port.database.name + "-wal"))
        if p.exists()
    )
    progress = Progress("backup")
    progress.step(f"copying {port.database} (about {size_text(total)}) to {destination}")
    done = threading.Event()
    partial = destination.with_name(destination.name + ".partial")
    watcher = threading.Thread(target=_watch, args=(partial, total, progress, done), daemon=True)
    watcher.start()
    try:
        size, sha256 = asyncio.run(copy_database(port, destination))
    finally:
        done.set()
        watcher.join()
    progress.done(f"backup of {port.database}: {size} bytes, sha256 {sha256}")
    emit(
        {
            "path": str(destination),
            "database": str(port.database),
            "sizeBytes": size,
            "sha256": sha256,
        },
        str(destination),
    )


@click.command()
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing database (it is kept beside it as *.pre-restore-<time>).",
)
@json_option
def restore(backup_file: Path, force: bool) -> None:
    """Restore BACKUP_FILE as the SQLite database of this configuration.

    Stop the server first: restore refuses while an Opstage process uses the database. The
    backup is checked (SQLite integrity, an Opstage schema this version knows) before anything
    is touched; an older schema is upgraded by `opstage migrate` or by the next `opstage serve`.
    """
    from alembic.script import ScriptDirectory

    from opstage.store.backup import BackupError, inspect_backup, restore_sqlite
    from opstage.store.migrate import alembic_config, head_revision

    settings = load_settings()
    target = sqlite_file(settings)
    if target is None:
        raise SettingsError(
            "`opstage restore` restores SQLite backups; on PostgreSQL use pg_restore"
        )
    revision = inspect_backup(backup_file)
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision is None:
        raise BackupError(f"{backup_file} holds no Opstage schema (no alembic_version)")
    if revision not in known:
        raise BackupError(
            f"{backup_file} is at schema {revision}, unknown to Opstage {__version__} "
            "(made by a newer version?)"
        )
    progress = Progress("restore")
    result = restore_sqlite(backup_file, target, replace=force, progress=progress.step)
    progress.done(f"restored {backup_file} to {result.target} (schema {revision})")
    if result.previous is not None:
        note(f"the previous database is kept at {result.previous}")
    upgrade_needed = revision != head_revision()
    if upgrade_needed:
        note("run `opstage migrate` (or `opstage serve`) to upgrade its schema")
    emit(
        {
            "path": str(result.target),
            "from": str(backup_file),
            "revision": revision,
            "previous": str(result.previous) if result.previous else None,
            "upgradeNeeded": upgrade_needed,
        },
        f"restored {backup_file} to {result.target} (schema {revision})",
    )


COMMANDS = [backup, restore]
