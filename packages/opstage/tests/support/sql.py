"""Direct access to a test server's own database, for setups no API can make quickly.

Used to plant many (or old, or hand-written) audit rows and to move a timestamp into the past.
SQLite: the file under the server's data dir (WAL, busy timeout: safe next to the live server).
PostgreSQL: the server's own database, through asyncpg.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from opstage.domain.ids import new_id
from opstage_testing.server import ServerProcess

AUDIT_COLUMNS = (
    "id",
    "created_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "result",
    "message",
    "metadata",
    "request_id",
)


def audit_row(created_at: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": new_id("aud"),
        "created_at": created_at,
        "actor_type": "SYSTEM",
        "actor_id": None,
        "action": "test.planted",
        "target_type": None,
        "target_id": None,
        "result": "SUCCESS",
        "message": None,
        "metadata": {},
        "request_id": None,
    }
    row.update(values)
    return row


def _sqlite(srv: ServerProcess) -> sqlite3.Connection:
    conn = sqlite3.connect(srv.data_dir / "opstage.db", timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _sqlite_ts(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _pg(coro_fn: Any) -> Any:
    return asyncio.run(coro_fn())


def insert_audit(srv: ServerProcess, rows: Sequence[dict[str, Any]]) -> None:
    if srv.database_url is None:
        conn = _sqlite(srv)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in AUDIT_COLUMNS)})",
                [
                    tuple(
                        _sqlite_ts(r[c])
                        if c == "created_at"
                        else json.dumps(r[c])
                        if c == "metadata"
                        else r[c]
                        for c in AUDIT_COLUMNS
                    )
                    for r in rows
                ],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return

    async def go() -> None:
        conn = await asyncpg.connect(srv.database_url)
        try:
            await conn.copy_records_to_table(
                "audit_events",
                columns=list(AUDIT_COLUMNS),
                records=[
                    tuple(json.dumps(r[c]) if c == "metadata" else r[c] for c in AUDIT_COLUMNS)
                    for r in rows
                ],
            )
        finally:
            await conn.close()

    _pg(go)


def set_timestamp(srv: ServerProcess, table: str, column: str, row_id: str, value: datetime) -> int:
    """``UPDATE table SET column = value WHERE id = row_id``; returns the rows changed."""
    if srv.database_url is None:
        conn = _sqlite(srv)
        try:
            cur = conn.execute(
                f"UPDATE {table} SET {column} = ? WHERE id = ?",
                (_sqlite_ts(value), row_id),
            )
            return int(cur.rowcount)
        finally:
            conn.close()

    async def go() -> int:
        conn = await asyncpg.connect(srv.database_url)
        try:
            status = await conn.execute(
                f"UPDATE {table} SET {column} = $1 WHERE id = $2", value, row_id
            )
            return int(status.split()[-1])
        finally:
            await conn.close()

    result: int = _pg(go)
    return result


def scalar(srv: ServerProcess, sql: str) -> Any:
    """The first column of the first row of a parameterless query."""
    if srv.database_url is None:
        conn = _sqlite(srv)
        try:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None
        finally:
            conn.close()

    async def go() -> Any:
        conn = await asyncpg.connect(srv.database_url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return _pg(go)


def corrupt_timestamp(srv: ServerProcess, table: str, column: str, row_id: str) -> None:
    """Make one stored timestamp unreadable, so that reading its row fails in the server.

    SQLite stores timestamps as text: the row gets text that is no timestamp. PostgreSQL
    cannot hold such a value in a ``timestamptz``, so the column becomes ``text`` (every row of
    it then reads back as a string the server does not expect).
    """
    garbage = "not a timestamp"
    if srv.database_url is None:
        conn = _sqlite(srv)
        try:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (garbage, row_id))
        finally:
            conn.close()
        return

    async def go() -> None:
        conn = await asyncpg.connect(srv.database_url)
        try:
            await conn.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text"
            )
            await conn.execute(f"UPDATE {table} SET {column} = $1 WHERE id = $2", garbage, row_id)
        finally:
            await conn.close()

    _pg(go)


def execute(srv: ServerProcess, sqlite_sql: Sequence[str], postgres_sql: Sequence[str]) -> None:
    """Run the statements meant for the server's engine (DDL: triggers, functions)."""
    if srv.database_url is None:
        conn = _sqlite(srv)
        try:
            for sql in sqlite_sql:
                conn.execute(sql)
        finally:
            conn.close()
        return

    async def go() -> None:
        conn = await asyncpg.connect(srv.database_url)
        try:
            for sql in postgres_sql:
                await conn.execute(sql)
        finally:
            await conn.close()

    _pg(go)
