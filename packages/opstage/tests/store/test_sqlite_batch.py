"""A bus batch as one SQLite statement stores what the driver's INSERTs store, or nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opstage.domain.events import AuditRecorded
from opstage.store.engine import create_engines
from opstage.store.event_log import append_rows
from opstage.store.fastpath.execution import SqliteSql
from opstage.store.fastpath.inserts import insert_statement
from opstage.store.fastpath.sqlite_batch import OneStatementBatch
from opstage.store.tables import audit_events, bus_events, domain_event_log
from sqlalchemy import Table

from .test_driver import _migrated

pytestmark = pytest.mark.sqlite_only

TRICKY = {
    "quote": 'it\'s "quoted" \\ /',
    "text": "é ☃ 𝄞 \u0000 nul, \n newline",
    "numbers": [0, -1, 2.5, -0.0, 1e300, 1.0000000000000002, 2**62, None, True, False],
    "nested": {"1": {"deep": []}, "empty": {}},
}


def _event(prefix: str, i: int, payload: Any, dry_run: bool) -> dict[str, Any]:
    return {
        "id": f"bev_{prefix}{i:025d}",
        "agent_id": "agt_1",
        "source_service_id": "svc_1",
        "source_service_code": "orders",
        "event_type": "order.paid",
        "payload": payload,
        "metadata": None,  # JSON null, as SQLAlchemy's JSON type stores it
        "correlation_id": None if i % 2 else "corr-é",
        "causation_id": None,
        "depth": i,
        "dry_run": dry_run,
        "route_count": 3,
        "idempotency_key": f"{prefix}-key-{i}" if i % 2 else None,
        "response": {"eventId": f"bev_{prefix}{i}", "routedCommands": []},
        "occurred_at": None if i % 2 else datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        "accepted_at": datetime(2026, 11, 23, 16, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    }


def _audit(prefix: str, i: int) -> dict[str, Any]:
    return {
        "id": f"aud_{prefix}{i:025d}",
        "created_at": datetime(2026, 11, 23, 14, 0, 0, 123456, tzinfo=UTC),
        "actor_type": "AGENT",
        "actor_id": "agt_1",
        "action": "bus.event.received",
        "target_type": "BusEvent",
        "target_id": f"bev_{prefix}{i}",
        "result": "SUCCESS",
        "message": None,
        "metadata": {"eventType": "order.paid", "depth": i, "ipAddress": "127.0.0.1"},
        "request_id": None,
    }


def _parts(prefix: str) -> list[tuple[Table, list[dict[str, Any]]]]:
    events = [_event(prefix, i, p, i == 1) for i, p in enumerate([TRICKY, {}, None, [1, "x"]])]
    logged = [AuditRecorded(f"aud_{prefix}{i}", "bus.event.received", "SUCCESS", None, None)
              for i in range(3)]  # fmt: skip
    return [
        (bus_events, events),
        (audit_events, [_audit(prefix, i) for i in range(5)]),
        (domain_event_log, append_rows(logged, datetime(2026, 11, 23, 15, 0, tzinfo=UTC))),
    ]


def _stored(raw: sqlite3.Connection, table: str, prefix: str) -> list[tuple[Any, ...]]:
    """Every column's value and SQLite type, with the run's prefix taken out of the ids."""
    cols = [r[1] for r in raw.execute(f"PRAGMA table_info({table})")]
    if table == "domain_event_log":
        cols.remove("id")  # the log's own sequence
    picked = ", ".join(f"{c}, typeof({c})" for c in cols)
    key = "data" if table == "domain_event_log" else "id"
    rows = raw.execute(f"SELECT {picked} FROM {table} WHERE {key} LIKE ? ORDER BY rowid",
                       (f"%_{prefix}%",)).fetchall()  # fmt: skip
    return [tuple(str(v).replace(prefix, "*") for v in row) for row in rows]


def _connect(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    return raw


def test_a_batch_stores_what_the_driver_statements_store(tmp_path: Path) -> None:
    db = tmp_path / "batch.db"
    _migrated(f"sqlite:///{db}")
    raw = _connect(db)
    dialect = create_engines("sqlite://").writer.dialect
    raw.execute("BEGIN IMMEDIATE")
    for table, rows in _parts("Xq7"):
        SqliteSql(raw).insert(insert_statement(dialect, table, rows))
    raw.execute("COMMIT")
    version = raw.execute("PRAGMA data_version").fetchone()[0]
    assert OneStatementBatch(_parts("Yq7"), version).run(raw, set())
    for table in ("bus_events", "audit_events", "domain_event_log"):
        by_statements, by_batch = _stored(raw, table, "Xq7"), _stored(raw, table, "Yq7")
        assert by_statements and by_batch == by_statements, table


def test_a_batch_after_another_connection_wrote_stores_nothing_and_says_so(
    tmp_path: Path,
) -> None:
    db = tmp_path / "stale.db"
    _migrated(f"sqlite:///{db}")
    raw = _connect(db)
    version = raw.execute("PRAGMA data_version").fetchone()[0]
    created: set[str] = set()
    other = _connect(db)
    other.execute("INSERT INTO system_settings VALUES ('k', '1', '2026-11-23 15:00:00.000000')")
    other.close()
    assert OneStatementBatch(_parts("Yq7"), version).run(raw, created) is False
    assert raw.execute("SELECT count(*) FROM bus_events").fetchone()[0] == 0
    version = raw.execute("PRAGMA data_version").fetchone()[0]
    assert OneStatementBatch(_parts("Yq7"), version).run(raw, created) is True  # fresh reads


def test_a_batch_a_constraint_refuses_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "dup.db"
    _migrated(f"sqlite:///{db}")
    raw = _connect(db)
    version = raw.execute("PRAGMA data_version").fetchone()[0]
    parts = _parts("Yq7")
    table, rows = parts[1]
    parts[1] = (table, rows + rows[:1])  # the last audit row repeats the first's id
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        OneStatementBatch(parts, version).run(raw, set())
    for table in ("bus_events", "audit_events", "domain_event_log"):
        assert raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert not raw.in_transaction
