"""Read-only aggregates for the dashboard, the metrics endpoints and diagnostics.

Each method is one grouped query (or a bounded sample), so a scrape costs a handful of index
scans whatever the fleet size.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Table, and_, case, func, select, text

from opstage.domain.records import DatabaseInfo, StaleAgent
from opstage.store.base import Repo
from opstage.store.tables import (
    UtcDateTime,
    agents,
    audit_events,
    bus_events,
    bus_routes,
    commands,
    registration_tokens,
    users,
)

LIVE_OR_SILENT = ("ONLINE", "PENDING", "OFFLINE")


class ObservabilityRepo(Repo):
    async def count(self, table: Table) -> int:
        stmt = select(func.count()).select_from(table)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def counts(self) -> dict[str, int]:
        return {
            "users": await self.count(users),
            "auditEvents": await self.count(audit_events),
            "busRoutes": await self.count(bus_routes),
            "busEvents": await self.count(bus_events),
        }

    async def token_counts_by_status(self, now: datetime) -> dict[str, int]:
        t = registration_tokens
        eff = case(
            (
                and_(t.c.status == "ACTIVE", t.c.expires_at.is_not(None), t.c.expires_at <= now),
                "EXPIRED",
            ),
            else_=t.c.status,
        ).label("s")
        rows = await self.conn.execute(select(eff, func.count()).group_by(eff))
        return {status: int(n) for status, n in rows.all()}

    async def command_counts_by_type_status(self) -> dict[tuple[str, str], int]:
        c = commands
        rows = await self.conn.execute(
            select(c.c.type, c.c.status, func.count()).group_by(c.c.type, c.c.status)
        )
        return {(type_, status): int(n) for type_, status, n in rows.all()}

    async def command_error_count(self, error_code: str) -> int:
        stmt = select(func.count()).select_from(commands).where(commands.c.error_code == error_code)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def audit_action_counts(self, actions: Sequence[str]) -> dict[str, int]:
        a = audit_events
        rows = await self.conn.execute(
            select(a.c.action, func.count())
            .where(a.c.action.in_(list(actions)))
            .group_by(a.c.action)
        )
        return {action: int(n) for action, n in rows.all()}

    async def bus_event_counts(self) -> dict[str, int]:
        b = bus_events
        rows = await self.conn.execute(select(b.c.dry_run, func.count()).group_by(b.c.dry_run))
        return {("dryRun" if dry else "accepted"): int(n) for dry, n in rows.all()}

    async def finished_command_timings(
        self, since: datetime, limit: int
    ) -> builtins.list[tuple[str, datetime, datetime]]:
        """(type, started_at, completed_at) of the newest finished commands created since."""
        c = commands
        rows = await self.conn.execute(
            select(c.c.type, c.c.started_at, c.c.completed_at)
            .where(
                c.c.created_at >= since,
                c.c.status.in_(("SUCCEEDED", "FAILED")),
                c.c.started_at.is_not(None),
                c.c.completed_at.is_not(None),
            )
            .order_by(c.c.created_at.desc())
            .limit(limit)
        )
        return [(t, s, e) for t, s, e in rows.all()]

    async def top_error_codes(
        self, since: datetime | None, limit: int, *, status: str | None = None
    ) -> builtins.list[tuple[str, int]]:
        """Most frequent error codes (of commands created since ``since``, in ``status``)."""
        c = commands
        n = func.count().label("n")
        where: list[ColumnElement[bool]] = [c.c.error_code.is_not(None)]
        if since is not None:
            where.append(c.c.created_at >= since)
        if status is not None:
            where.append(c.c.status == status)
        rows = await self.conn.execute(
            select(c.c.error_code, n)
            .where(*where)
            .group_by(c.c.error_code)
            .order_by(n.desc(), c.c.error_code)
            .limit(limit)
        )
        return [(code, int(count)) for code, count in rows.all()]

    async def stale_online_agents(self, cutoff: datetime) -> int:
        """The reference's ``staleOnlineAgents``: stored ONLINE, silent since before ``cutoff``."""
        heard = agents.c.last_heartbeat_at
        stmt = (
            select(func.count())
            .select_from(agents)
            .where(agents.c.status == "ONLINE", (heard.is_(None)) | (heard < cutoff))
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def stale_agents(
        self, cutoff: datetime, limit: int
    ) -> tuple[builtins.list[StaleAgent], int]:
        """Agents not disabled/revoked whose last contact (or creation) is older than cutoff."""
        seen = func.coalesce(agents.c.last_heartbeat_at, agents.c.created_at, type_=UtcDateTime())
        where = and_(agents.c.status.in_(LIVE_OR_SILENT), seen < cutoff)
        total = (
            await self.conn.execute(select(func.count()).select_from(agents).where(where))
        ).scalar_one()
        rows = await self.all(
            select(
                agents.c.id,
                agents.c.code,
                agents.c.name,
                agents.c.status,
                agents.c.last_heartbeat_at,
                agents.c.created_at,
            )
            .where(where)
            .order_by(seen.desc(), agents.c.id)
            .limit(limit),
            StaleAgent,
        )
        return rows, int(total)

    async def database_info(self) -> DatabaseInfo:
        if self.kind == "postgres":
            version = (await self.conn.execute(text("SHOW server_version"))).scalar()
            size = (
                await self.conn.execute(text("SELECT pg_database_size(current_database())"))
            ).scalar()
            return {"kind": "postgres", "server_version": version, "size_bytes": int(size or 0)}
        version = (await self.conn.execute(text("SELECT sqlite_version()"))).scalar()
        pages = (await self.conn.execute(text("PRAGMA page_count"))).scalar()
        page_size = (await self.conn.execute(text("PRAGMA page_size"))).scalar()
        out: DatabaseInfo = {
            "kind": "sqlite",
            "server_version": version,
            "size_bytes": int(pages or 0) * int(page_size or 0),
        }
        for _seq, name, path in (await self.conn.execute(text("PRAGMA database_list"))).all():
            if name == "main" and path:
                out["wal_size_bytes"] = _file_size(f"{path}-wal")
        return out


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
