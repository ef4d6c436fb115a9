"""Values in and out of the driver, converted per column type, chosen once per column.

``UtcDateTime`` is SQLite's stored text (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC, what
SQLAlchemy writes) and an aware datetime on PostgreSQL; ``JSON`` is orjson text (``None`` is
JSON ``null``, as SQLAlchemy's ``JSON`` type stores it) and is decoded on SQLite (asyncpg's
codec decodes it on PostgreSQL); ``Boolean`` is read back as ``bool`` on SQLite. So rows
written here are stored byte for byte as Core stores them and rows read here equal Core's
(ADR 0008; tests/store/test_driver.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean

from opstage.store.engine import json_dumps, json_loads
from opstage.store.tables import UtcDateTime

Row = dict[str, Any]
Convert = Callable[[Any], Any]


def timestamp_in(dialect: str) -> Convert:
    """A converter of aware datetimes to what ``dialect`` stores (remembers the last one)."""
    last: list[Any] = [None, None]  # a batch stamps many rows with one instant: remember it

    def convert(value: datetime | None) -> Any:
        if value is None:
            return None
        if value is last[0]:
            return last[1]
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        out = (
            utc.replace(tzinfo=None).isoformat(" ", "microseconds") if dialect == "sqlite" else utc
        )
        last[0], last[1] = value, out
        return out

    return convert


def _json_in(value: Any) -> str:
    return "null" if value is None else json_dumps(value)


def _timestamp_out_sqlite(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _timestamp_out_postgres(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _json_out_sqlite(value: Any) -> Any:
    return None if value is None else json_loads(value)


def _bool_out_sqlite(value: Any) -> bool | None:
    return None if value is None else bool(value)


def is_timestamp(column_type: Any) -> bool:
    return isinstance(column_type, UtcDateTime)


def is_json(column_type: Any) -> bool:
    return isinstance(column_type, JSON)


def writer(column_type: Any, dialect: str) -> Convert | None:
    """How a value bound for a column of this type is converted (None: unchanged)."""
    if is_timestamp(column_type):
        return timestamp_in(dialect)
    if is_json(column_type):
        return _json_in
    return None


def reader(column_type: Any, dialect: str) -> Convert | None:
    """How a value read from a column of this type is converted (None: unchanged)."""
    sqlite = dialect == "sqlite"
    if is_timestamp(column_type):
        return _timestamp_out_sqlite if sqlite else _timestamp_out_postgres
    if is_json(column_type):
        return _json_out_sqlite if sqlite else None
    if isinstance(column_type, Boolean):
        return _bool_out_sqlite if sqlite else None
    return None
