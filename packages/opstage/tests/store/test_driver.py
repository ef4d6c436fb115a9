"""Statements sent to the driver directly (store/fastpath/) behave as SQLAlchemy Core's do.

Rows written by either path must read back alike and sort alike (timestamps are compared as
text on SQLite), so the same rows are inserted both ways and the raw stored values compared;
rows read either way must be equal; driver errors must map as Core's do.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opstage.domain.errors import DuplicateRow, Unavailable
from opstage.domain.events import AuditRecorded
from opstage.store.engine import JSON_OPTIONS, create_engines, normalize_url
from opstage.store.fastpath import inserts
from opstage.store.fastpath.execution import insert_rows
from opstage.store.fastpath.query import Query
from opstage.store.tables import audit_events, domain_event_log
from opstage.store.uow import SqlUnitOfWork
from opstage_testing.cli import run_cli
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

_AUDIT_BY_ID = Query(select(audit_events).where(audit_events.c.id == bindparam("id")))


def _migrated(url: str) -> None:
    out = run_cli(["migrate", "up"], {"DATABASE_URL": url, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr


def _audit(i: int, created_at: datetime, metadata: Any) -> dict[str, Any]:
    return {
        "id": f"aud_{i:026d}",
        "created_at": created_at,
        "actor_type": "AGENT",
        "actor_id": None,
        "action": "bus.event.received",
        "target_type": "BusEvent",
        "target_id": "bev_x",
        "result": "SUCCESS",
        "message": None,
        "metadata": metadata,
        "request_id": "req-1",
    }


INSTANTS = [
    datetime(2026, 11, 23, 14, 0, 0, tzinfo=UTC),  # no microseconds: still written with them
    datetime(2026, 11, 23, 14, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 11, 23, 16, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),  # not UTC
]
METADATA = [{"a": 1, "nested": {"x": [1, 2.5, None]}}, None, {"text": "é ☃"}]


async def _compare(url: str) -> None:
    engine = create_async_engine(normalize_url(url), poolclass=NullPool, **JSON_OPTIONS)
    try:
        async with engine.begin() as conn:
            pairs = enumerate(zip(INSTANTS, METADATA, strict=True))
            core = [_audit(i, t, m) for i, (t, m) in pairs]
            bulk = [{**r, "id": r["id"].replace("aud_", "aux_")} for r in core]
            await conn.execute(audit_events.insert(), core)
            await insert_rows(conn, audit_events, bulk)
            await insert_rows(conn, audit_events, [_audit(99, INSTANTS[0], {})])  # one row alone
            event = AuditRecorded("aud_1", "bus.event.received", "SUCCESS", "BusEvent", "bev_x")
            logged_row = {"kind": event.kind, "data": event, "created_at": INSTANTS[1]}
            await insert_rows(conn, domain_event_log, [logged_row])
            cols = "id, created_at, metadata, CAST(metadata AS TEXT)"
            raw = (await conn.execute(text(f"SELECT {cols} FROM audit_events ORDER BY id"))).all()
            by_id_stmt = select(audit_events).order_by(audit_events.c.id)
            typed = (await conn.execute(by_id_stmt)).mappings().all()
            logged = (await conn.execute(select(domain_event_log))).mappings().one()
    finally:
        await engine.dispose()
    by_id = {r[0]: r[1:] for r in raw}
    for row in core:
        twin = row["id"].replace("aud_", "aux_")
        assert by_id[twin] == by_id[row["id"]], f"stored differently: {row['id']}"
    as_read = {r["id"]: r for r in typed}
    for row in core:
        twin = as_read[row["id"].replace("aud_", "aux_")]
        assert twin["created_at"] == row["created_at"] and twin["created_at"].tzinfo is not None
        assert twin["metadata"] == row["metadata"]
    assert logged["data"] == {
        "audit_id": "aud_1",
        "action": "bus.event.received",
        "result": "SUCCESS",
        "target_type": "BusEvent",
        "target_id": "bev_x",
    }


def test_bulk_insert_stores_what_core_stores(tmp_path: Path, database_factory: Any) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'bulk.db'}"
    _migrated(url)
    asyncio.run(_compare(url))


def test_bulk_insert_refuses_a_naive_timestamp(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'naive.db'}"
    _migrated(url)

    async def go() -> None:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                with pytest.raises(ValueError, match="naive"):
                    await insert_rows(conn, audit_events, [_audit(1, datetime(2026, 1, 1), {})])
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_a_duplicate_through_the_driver_is_a_duplicate_row(
    tmp_path: Path, database_factory: Any
) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'dup.db'}"
    _migrated(url)

    async def go() -> None:
        engines = create_engines(url)
        try:
            row = _audit(1, INSTANTS[0], {})

            async def twice() -> None:
                async with SqlUnitOfWork(engines, None, write=True) as uow:
                    await insert_rows(uow.conn, audit_events, [row])
                    await insert_rows(uow.conn, audit_events, [row])

            with pytest.raises(DuplicateRow):
                await twice()
            async with SqlUnitOfWork(engines, None, write=False) as uow:  # nothing committed
                assert await _AUDIT_BY_ID.one(uow.conn, id=row["id"]) is None
        finally:
            await engines.dispose()

    asyncio.run(go())


async def _driver_read(uow: SqlUnitOfWork) -> None:
    await _AUDIT_BY_ID.rows(uow.conn, id="none")


async def _core_read(uow: SqlUnitOfWork) -> None:
    await uow.conn.execute(select(audit_events.c.id).limit(1))


@pytest.mark.sqlite_only
def test_a_writer_holds_the_write_lock_from_its_first_read(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE is deferred to the unit's first statement
    (store/fastpath/sqlite_dialect.py), but it must come before that statement, whichever
    path the statement takes."""
    path = tmp_path / "lock.db"
    url = f"sqlite:///{path}"
    _migrated(url)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)

    async def go() -> None:
        engines = create_engines(url)
        try:
            for first in (_driver_read, _core_read):
                async with SqlUnitOfWork(engines, None, write=True) as uow:
                    await first(uow)
                    with pytest.raises(sqlite3.OperationalError, match="locked"):
                        other.execute("BEGIN IMMEDIATE")
                other.execute("BEGIN IMMEDIATE")  # released at the unit's end
                other.execute("ROLLBACK")
        finally:
            await engines.dispose()

    try:
        asyncio.run(go())
    finally:
        other.close()


@pytest.mark.sqlite_only
def test_a_locked_database_is_unavailable_not_an_error(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE goes straight to the driver; SQLITE_BUSY must still be a 503."""
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    _migrated(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def go() -> None:
        engines = create_engines(url, busy_timeout_ms=50)
        try:
            for first in (_driver_read, _core_read):  # BEGIN IMMEDIATE comes with either
                with pytest.raises(Unavailable) as caught:
                    async with SqlUnitOfWork(engines, None, write=True) as uow:
                        await first(uow)
                assert caught.value.code == "DATABASE_UNAVAILABLE"
            holder.execute("ROLLBACK")
            async with SqlUnitOfWork(engines, None, write=True) as uow:  # the pool recovered
                await insert_rows(uow.conn, audit_events, [_audit(7, INSTANTS[0], {})])
        finally:
            await engines.dispose()

    try:
        asyncio.run(go())
    finally:
        holder.close()


@pytest.mark.sqlite_only
def test_many_rows_go_in_multi_row_chunks_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite gets one multi-row INSERT per chunk; every row lands once, in the given order."""
    monkeypatch.setattr(inserts, "MULTI_ROW_MAX", 7)
    url = f"sqlite:///{tmp_path / 'chunks.db'}"
    _migrated(url)
    rows = [
        {"kind": f"k{i:03d}", "data": {"i": i}, "created_at": INSTANTS[i % 3]} for i in range(53)
    ]

    async def run() -> list[Any]:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool, **JSON_OPTIONS)
        try:
            async with engine.begin() as conn:
                await insert_rows(conn, domain_event_log, rows)
                stmt = select(domain_event_log).order_by(domain_event_log.c.id)
                return list((await conn.execute(stmt)).mappings().all())
        finally:
            await engine.dispose()

    stored = asyncio.run(run())
    assert [r["kind"] for r in stored] == [r["kind"] for r in rows]
    assert [r["data"] for r in stored] == [r["data"] for r in rows]
    assert [r["created_at"] for r in stored] == [r["created_at"] for r in rows]
