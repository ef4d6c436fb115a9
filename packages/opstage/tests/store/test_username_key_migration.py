"""Migration 0004: usernames unique without regard to case, enforced by the database.

Rows written before it that fold to one name all survive: the oldest keeps the plain key (and
its login), each later one gets ``<key>#<user id>``. After it, the database itself refuses a
second row with the same key, whatever the application does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opstage.domain.ids import new_id
from opstage.store.engine import normalize_url
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from .test_migrations import _cli


def _run(url: str, statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def go() -> list[Any]:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                out = []
                for sql, params in statements:
                    result = await conn.execute(text(sql), params)
                    out.append(result.all() if result.returns_rows else None)
                return out
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _user(
    username: str, created_at: datetime, key: str | None = None
) -> tuple[str, dict[str, Any]]:
    columns = "id, username, role, status, password_hash, created_at, updated_at"
    values = ":id, :username, 'viewer', 'ACTIVE', 'x', :at, :at"
    params: dict[str, Any] = {"id": new_id("usr"), "username": username, "at": created_at}
    if key is not None:
        columns, values = columns + ", username_key", values + ", :key"
        params["key"] = key
    return f"INSERT INTO users ({columns}) VALUES ({values})", params


def test_existing_lookalike_usernames_survive_and_new_ones_are_refused(
    tmp_path: Path, database_factory: Any
) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'u.db'}"
    _cli(url, "up", "0003")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    planted = [
        _user("admin", t0),
        _user("ADMIN", t0 + timedelta(seconds=1)),
        _user("admin ", t0 + timedelta(seconds=2)),
        _user("\uff22ob", t0 + timedelta(seconds=3)),  # a fullwidth B
    ]
    _run(url, planted)
    _cli(url, "up")

    (rows,) = _run(url, [("SELECT id, username, username_key FROM users ORDER BY created_at", {})])
    ids = [r[0] for r in rows]
    assert [(r[1], r[2]) for r in rows] == [
        ("admin", "admin"),
        ("ADMIN", f"admin#{ids[1].lower()}"),
        ("admin ", f"admin#{ids[2].lower()}"),
        ("\uff22ob", "bob"),
    ]

    # The database refuses what the application would refuse, even written around it.
    with pytest.raises(IntegrityError):
        _run(url, [_user("Admin", t0 + timedelta(seconds=9), key="admin")])

    _cli(url, "down", "0003", "--yes")
    (cols,) = _run(url, [("SELECT * FROM users LIMIT 1", {})])
    assert len(cols[0]) == 9, "downgrade drops username_key again"
