"""Writing and reading the audit trail.

Every audit row is written inside the caller's unit of work, so it commits or rolls back
with the change it describes. Metadata is redacted before it is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from opstage.app.context import Actor, AppContext
from opstage.app.ports import UnitOfWork
from opstage.domain.errors import DomainError, NotFound
from opstage.domain.events import AuditRecorded
from opstage.domain.ids import new_id
from opstage.domain.redaction import redact


async def write_audit(
    uow: UnitOfWork, actor: Actor, action: str, *, target_type: str | None = None,
    target_id: str | None = None, result: str = "SUCCESS", message: str | None = None,
    metadata: dict[str, Any] | None = None, now: datetime,
) -> str:
    audit_id = new_id("aud")
    meta = dict(redact(metadata or {}))
    if actor.ip:
        meta.setdefault("ipAddress", actor.ip)
    if actor.user_agent:
        meta.setdefault("userAgent", actor.user_agent[:300])
    await uow.audit.insert({
        "id": audit_id, "created_at": now, "actor_type": actor.type, "actor_id": actor.id,
        "action": action, "target_type": target_type, "target_id": target_id,
        "result": result, "message": message, "metadata": meta,
        "request_id": actor.request_id,
    })
    uow.record(AuditRecorded(audit_id, action, result, target_type, target_id))
    return audit_id


async def write_failure_audit(
    ctx: AppContext, actor: Actor, action: str, error: DomainError, *,
    target_type: str | None = None, target_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """A refused operation leaves a trace in its own small transaction."""
    async with ctx.writer() as uow:
        await write_audit(uow, actor, action, target_type=target_type, target_id=target_id,
                          result="FAILURE", message=error.message,
                          metadata={**(metadata or {}), "errorCode": error.code}, now=ctx.clock())


async def list_audit(
    ctx: AppContext, *, actor_types: Sequence[str], results: Sequence[str],
    actions: Sequence[str], target_type: str | None, target_id: str | None,
    since: datetime | None, until: datetime | None, sort: Sequence[tuple[str, bool]], page: int,
    page_size: int,
) -> tuple[list[dict[str, Any]], int]:
    async with ctx.reader() as uow:
        rows, total = await uow.audit.list(
            actor_types=actor_types, results=results, actions=actions, target_type=target_type,
            target_id=target_id, since=since, until=until, sort=sort, page=page,
            page_size=page_size)
    return rows, total


async def get_audit(ctx: AppContext, audit_id: str) -> dict[str, Any]:
    async with ctx.reader() as uow:
        row = await uow.audit.get(audit_id)
    if row is None:
        raise NotFound("Audit event not found.", code="NOT_FOUND")
    return dict(row)
