"""The audit trail: filtered list, detail, and a streaming CSV/JSON export of the filtered set.

The export (``GET /api/admin/audit-events/export?format=csv|json`` with the list's filters, as
the reference server exposes it) is written batch by batch while the client reads, so its memory
does not grow with the number of rows. CSV follows RFC 4180 (every field quoted when it holds a
comma, quote or line break; quotes doubled; CRLF line ends); a text cell that a spreadsheet
would run as a formula (leading ``=``, ``+``, ``-``, ``@``, tab or CR) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import StringConstraints
from starlette.responses import Response, StreamingResponse

from opstage.api.deps import Ctx, admin_actor, require
from opstage.api.envelope import ok, page
from opstage.api.queries import PageNo, PageSize, parse_sort
from opstage.api.rbac import READ
from opstage.api.views import audit_view
from opstage.app import audit
from opstage.app.auth import SessionInfo
from opstage.domain.errors import ValidationFailed
from opstage.domain.records import AuditRow
from opstage.domain.timeutil import millisecond_bounds, parse_iso

router = APIRouter(prefix="/api/admin/audit-events", tags=["AdminAuditEvents"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Exporter = Annotated[SessionInfo, Depends(require("audit:export"))]
ActorType = Annotated[list[Literal["USER", "AGENT", "SYSTEM"]] | None, Query(alias="actorType")]
Result = Annotated[list[Literal["SUCCESS", "FAILURE", "DENIED"]] | None, Query()]
ActionName = Annotated[str, StringConstraints(min_length=1, max_length=160)]
Action = Annotated[list[ActionName] | None, Query()]

CSV_COLUMNS = (
    "id",
    "createdAt",
    "actorType",
    "actorId",
    "action",
    "targetType",
    "targetId",
    "result",
    "message",
    "ipAddress",
    "userAgent",
    "requestId",
    "metadata",
)
DATE_TIME = {"format": "date-time"}  # documented only: parsed below, with our codes
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def audit_filters(
    actor_type: ActorType = None,
    result: Result = None,
    action: Action = None,
    target_type: Annotated[
        str | None, Query(alias="targetType", min_length=1, max_length=120)
    ] = None,
    target_id: Annotated[str | None, Query(alias="targetId", min_length=1, max_length=160)] = None,
    from_: Annotated[str | None, Query(alias="from", json_schema_extra=DATE_TIME)] = None,
    to: Annotated[str | None, Query(json_schema_extra=DATE_TIME)] = None,
) -> audit.AuditFilters:
    issues = []
    since = until = None
    for name, raw in (("from", from_), ("to", to)):
        if raw is None:
            continue
        try:
            parsed = parse_iso(raw)
        except ValueError:
            issues.append({"path": name, "message": f"{name} must be an ISO-8601 date-time"})
            continue
        first, last = millisecond_bounds(parsed)  # the precision the API shows
        if name == "from":
            since = first
        else:
            until = last
    if since and until and since > until:
        issues.append({"path": "from", "message": "from must be before or equal to to"})
    # Text filters are trimmed and a blank one is refused, as the reference's
    # `z.string().trim().min(1)` does (docs/compatibility.md, "Untrusted input at the edge").
    actions = tuple(a.strip() for a in action or ())
    for name, values in (
        ("action", actions),
        ("targetType", (target_type,)),
        ("targetId", (target_id,)),
    ):
        if any(v is not None and not v.strip() for v in values):
            issues.append({"path": name, "message": f"{name} must not be blank"})
    if issues:
        raise ValidationFailed("Audit event query validation failed.", issues)
    return audit.AuditFilters(
        actor_types=tuple(actor_type or ()),
        results=tuple(result or ()),
        actions=actions,
        target_type=target_type.strip() if target_type else None,
        target_id=target_id.strip() if target_id else None,
        since=since,
        until=until,
    )


Filters = Annotated[audit.AuditFilters, Depends(audit_filters)]


@router.get("")
async def list_(
    ctx: Ctx,
    _: Reader,
    filters: Filters,
    page_: PageNo = 1,
    page_size: PageSize = 20,
    sort: str | None = None,
) -> Response:
    order = parse_sort(sort, ("createdAt",))
    rows, total = await audit.list_audit(
        ctx,
        actor_types=filters.actor_types,
        results=filters.results,
        actions=filters.actions,
        target_type=filters.target_type,
        target_id=filters.target_id,
        since=filters.since,
        until=filters.until,
        sort=order,
        page=page_,
        page_size=page_size,
    )
    return page([audit_view(r) for r in rows], page=page_, page_size=page_size, total=total)


@router.get("/export")
async def export(
    request: Request,
    ctx: Ctx,
    session: Exporter,
    filters: Filters,
    format_: Annotated[Literal["csv", "json"], Query(alias="format")] = "json",
    sort: str | None = None,
) -> Response:
    order = parse_sort(sort, ("createdAt",))
    descending = order[0][1] if order else True
    batches = audit.export_audit(
        ctx, admin_actor(request, session), filters, fmt=format_, descending=descending
    )
    # Read the first batch before answering, so a database error is a clean error response.
    first: list[AuditRow] = await anext(batches, [])
    stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Content-Disposition": f'attachment; filename="opstage-audit-{stamp}.{format_}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if format_ == "csv":
        body = _csv(first, batches)
        return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)
    return StreamingResponse(_json(first, batches), media_type="application/json", headers=headers)


async def _csv(first: list[AuditRow], rest: AsyncIterator[list[AuditRow]]) -> AsyncIterator[bytes]:
    yield _csv_lines([CSV_COLUMNS])
    batch = first
    while batch:
        yield _csv_lines([_csv_row(audit_view(r)) for r in batch])
        batch = await anext(rest, [])


def _csv_lines(rows: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _csv_row(view: dict[str, Any]) -> list[str]:
    cells = []
    for column in CSV_COLUMNS:
        value = view.get(column)
        if value is None:
            text = ""
        elif isinstance(value, dict | list):
            text = orjson.dumps(value).decode()
        else:
            text = str(value)
        if text.startswith(FORMULA_PREFIXES):
            text = "'" + text
        cells.append(text)
    return cells


async def _json(first: list[AuditRow], rest: AsyncIterator[list[AuditRow]]) -> AsyncIterator[bytes]:
    yield b'{"success":true,"data":['
    batch, separator = first, b""
    while batch:
        yield separator + b",".join(orjson.dumps(audit_view(r)) for r in batch)
        separator = b","
        batch = await anext(rest, [])
    yield b"]}"


@router.get("/{auditEventId}")
async def get(ctx: Ctx, _: Reader, auditEventId: str) -> Response:
    return ok(audit_view(await audit.get_audit(ctx, auditEventId)))
