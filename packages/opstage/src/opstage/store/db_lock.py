"""Who has a SQLite database open: a lock file next to it, ``<database>.lock``.

Every process that opens the database through ``Runtime`` (``opstage serve``, the one-off CLI
commands) holds a *shared* ``flock`` on it for as long as it runs; ``opstage restore`` takes it
*exclusively*, without waiting. So a restore refuses while a server is running — a server keeps
writing to the file it opened, which restore would have moved aside — and a server does not
start in the middle of a restore. The kernel drops a lock when its process dies, so a crashed
server never leaves a stale one. The lock file is separate from the database because restore
renames the database file, and a lock on the old inode would no longer guard the path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; restore then relies on the docs
    fcntl = None  # type: ignore[assignment]


class DatabaseInUse(Exception):
    """The database is in use by another process; the message says which side and what to do."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class DatabaseLock:
    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    @classmethod
    def shared(cls, database: Path) -> DatabaseLock:
        """Held by every process using the database; refused while a restore runs."""
        fd = cls._take(database, exclusive=False)
        if fd is None and fcntl is not None:
            raise DatabaseInUse(
                f"{database} is being restored (`opstage restore` holds {lock_path(database)}); "
                "start again when it has finished"
            )
        return cls(fd)

    @classmethod
    def _take(cls, database: Path, *, exclusive: bool) -> int | None:
        if fcntl is None:
            return None
        database.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


@contextlib.contextmanager
def exclusive(database: Path) -> Iterator[None]:
    """Hold the database alone (for a restore), or raise ``DatabaseInUse`` at once."""
    if fcntl is None:
        yield
        return
    fd = DatabaseLock._take(database, exclusive=True)
    if fd is None:
        raise DatabaseInUse(
            f"{database} is in use by a running Opstage process (`opstage serve`, or another "
            f"opstage command; they hold {lock_path(database)}): stop the server first, then "
            "restore. Restoring under a running server would leave it writing to the file "
            "moved aside."
        )
    try:
        yield
    finally:
        DatabaseLock(fd).release()
