"""The audit trail, filtered and paginated."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from opstage.api.deps import Ctx, require
from opstage.api.envelope import ok, page
from opstage.api.queries import PageSize, parse_sort
from opstage.api.rbac import READ
from opstage.api.views import audit_view
from opstage.app import audit
from opstage.app.auth import SessionInfo
from opstage.domain.errors import ValidationFailed
from opstage.domain.timeutil import parse_iso

router = APIRouter(prefix="/api/admin/audit-events", tags=["AdminAuditEvents"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
ActorType = Annotated[list[str] | None, Query(alias="actorType", pattern="^(USER|AGENT|SYSTEM)$")]
Result = Annotated[list[str] | None, Query(pattern="^(SUCCESS|FAILURE|DENIED)$")]


@router.get("")
async def list_(ctx: Ctx, _: Reader,
                page_: Annotated[int, Query(alias="page", ge=1)] = 1, page_size: PageSize = 20,
                sort: str | None = None, actor_type: ActorType = None, result: Result = None,
                action: Annotated[list[str] | None, Query(min_length=1, max_length=160)] = None,
                target_type: Annotated[str | None, Query(alias="targetType", min_length=1,
                                                         max_length=120)] = None,
                target_id: Annotated[str | None, Query(alias="targetId", min_length=1,
                                                       max_length=160)] = None,
                from_: Annotated[str | None, Query(alias="from")] = None,
                to: Annotated[str | None, Query()] = None) -> Response:
    order = parse_sort(sort, ("createdAt",))
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
        if name == "from":
            since = parsed
        else:
            until = parsed
    if since and until and since > until:
        issues.append({"path": "from", "message": "from must be before or equal to to"})
    if target_id is not None and not target_id.strip():
        issues.append({"path": "targetId", "message": "targetId must not be blank"})
    if issues:
        raise ValidationFailed("Audit event query validation failed.", issues)
    rows, total = await audit.list_audit(
        ctx, actor_types=actor_type or [], results=result or [], actions=action or [],
        target_type=target_type.strip() if target_type else None,
        target_id=target_id.strip() if target_id else None, since=since, until=until,
        sort=order, page=page_, page_size=page_size)
    return page([audit_view(r) for r in rows], page=page_, page_size=page_size, total=total)


@router.get("/{auditEventId}")
async def get(ctx: Ctx, _: Reader, auditEventId: str) -> Response:  # noqa: N803
    return ok(audit_view(await audit.get_audit(ctx, auditEventId)))
