"""Writing, reading, exporting and pruning the audit trail.

Every audit row is written inside the caller's unit of work, so it commits or rolls back
with the change it describes. Metadata is redacted before it is stored, and again on every way
out (list, detail, export), so a row written by an older version or by hand cannot leak.

Export walks the filtered set in keyset batches, each read in its own short unit of work: memory
stays flat however many rows match, and no transaction stays open while a slow client reads.
Retention deletes in batches of ``PRUNE_BATCH`` rows, one write transaction each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from opstage.app.context import Actor, UnitContext
from opstage.app.ports import UnitOfWork
from opstage.domain.errors import DomainError, NotFound
from opstage.domain.events import AuditRecorded
from opstage.domain.ids import new_id
from opstage.domain.redaction import mask_token_values, redact


async def write_audit(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    result: str = "SUCCESS",
    message: str | None = None,
    metadata: dict[str, Any] | None = None,
    now: datetime,
) -> str:
    row, event = audit_row(
        actor,
        action,
        target_type=target_type,
        target_id=target_id,
        result=result,
        message=message,
        metadata=metadata,
        now=now,
    )
    await uow.audit.insert(row)
    uow.record(event)
    return event.audit_id


def audit_row(
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    result: str = "SUCCESS",
    message: str | None = None,
    metadata: dict[str, Any] | None = None,
    now: datetime,
) -> tuple[dict[str, Any], AuditRecorded]:
    """An audit row and its domain event, for a caller that writes rows in bulk."""
    audit_id = new_id("aud")
    meta: dict[str, Any] = redact(metadata or {})  # a fresh dict
    if actor.ip:
        meta.setdefault("ipAddress", actor.ip)
    if actor.user_agent:  # a header: any string a client chose, tokens included
        meta.setdefault("userAgent", mask_token_values(actor.user_agent[:300]))
    row = {
        "id": audit_id,
        "created_at": now,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "result": result,
        "message": mask_token_values(message) if message else message,
        "metadata": meta,
        "request_id": actor.request_id,
    }
    return row, AuditRecorded(audit_id, action, result, target_type, target_id)


async def write_failure_audit(
    ctx: UnitContext,
    actor: Actor,
    action: str,
    error: DomainError,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """A refused operation leaves a trace in its own small transaction."""
    async with ctx.writer() as uow:
        await write_audit(
            uow,
            actor,
            action,
            target_type=target_type,
            target_id=target_id,
            result="FAILURE",
            message=error.message,
            metadata={**(metadata or {}), "errorCode": error.code},
            now=ctx.clock(),
        )


async def list_audit(
    ctx: UnitContext,
    *,
    actor_types: Sequence[str] = (),
    results: Sequence[str] = (),
    actions: Sequence[str] = (),
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: Sequence[tuple[str, bool]] = (("createdAt", True),),
    page: int,
    page_size: int,
    action_prefix: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    async with ctx.reader() as uow:
        rows, total = await uow.audit.list(
            actor_types=actor_types,
            results=results,
            actions=actions,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
            sort=sort,
            page=page,
            page_size=page_size,
            action_prefix=action_prefix,
        )
    return [clean(r) for r in rows], total


async def get_audit(ctx: UnitContext, audit_id: str) -> dict[str, Any]:
    async with ctx.reader() as uow:
        row = await uow.audit.get(audit_id)
    if row is None:
        raise NotFound("Audit event not found.", code="NOT_FOUND")
    return clean(row)


def clean(row: dict[str, Any]) -> dict[str, Any]:
    """A row as it may leave the server: metadata and message redacted."""
    out = dict(row)
    out["metadata"] = redact(out.get("metadata") or {})
    if out.get("message"):
        out["message"] = redact(out["message"])
    return out


EXPORT_BATCH = 1000
PRUNE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditFilters:
    actor_types: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> dict[str, Any]:
        """The filters that were set, for the export's own audit row."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value in (None, (), []):
                continue
            out[key] = iso_or(value)
        return out


def iso_or(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


async def export_audit(
    ctx: UnitContext,
    actor: Actor,
    filters: AuditFilters,
    *,
    fmt: str,
    descending: bool = True,
    batch_size: int = EXPORT_BATCH,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Batches of the filtered set as of now (rows written later are not included).

    The export itself is audited (``audit.exported``) before the first row is read.
    """
    now = ctx.clock()
    until = min(filters.until, now) if filters.until else now
    async with ctx.writer() as uow:
        await write_audit(
            uow,
            actor,
            "audit.exported",
            metadata={"format": fmt, "filters": filters.describe()},
            now=now,
        )
    query = asdict(filters) | {"until": until}
    cursor: tuple[datetime, str] | None = None
    while True:
        async with ctx.reader() as uow:
            rows = await uow.audit.batch_after(
                after=cursor, descending=descending, limit=batch_size, **query
            )
        if rows:
            yield [clean(r) for r in rows]
        if len(rows) < batch_size:
            return
        cursor = (rows[-1]["created_at"], rows[-1]["id"])


async def prune_audit(
    ctx: UnitContext,
    retention_days: int,
    *,
    now: datetime,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete audit rows older than ``retention_days`` (0 keeps everything), batch by batch.

    ``on_batch`` hears the running total after each batch (the CLI's progress line).
    """
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    deleted = 0
    while True:
        async with ctx.writer() as uow:
            n: int = await uow.audit.prune_before(cutoff, PRUNE_BATCH)
        deleted += n
        if on_batch is not None:
            on_batch(deleted)
        if n < PRUNE_BATCH:
            return deleted
        await asyncio.sleep(0)  # let queued writers take the lock between batches


async def purge_audit(
    ctx: UnitContext,
    actor: Actor,
    retention_days: int,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Retention on demand (``opstage audit prune``): prune, then audit ``audit.pruned``."""
    deleted = await prune_audit(ctx, retention_days, now=ctx.clock(), on_batch=on_batch)
    async with ctx.writer() as uow:
        await write_audit(
            uow,
            actor,
            "audit.pruned",
            metadata={"retentionDays": retention_days, "deleted": deleted},
            now=ctx.clock(),
        )
    return deleted
