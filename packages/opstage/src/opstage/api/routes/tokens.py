"""Registration tokens (the raw value is returned once, at creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok, page
from opstage.api.models import CreateRegistrationTokenRequest
from opstage.api.queries import PageNo, PageSize, parse_sort
from opstage.api.rbac import READ
from opstage.api.views import token_view
from opstage.app import tokens
from opstage.app.auth import SessionInfo
from opstage.domain.status import TokenStatus

router = APIRouter(prefix="/api/admin/registration-tokens", tags=["AdminRegistrationTokens"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Writer = Annotated[SessionInfo, Depends(require("tokens:write"))]


@router.post("")
async def create(request: Request, ctx: Ctx, session: Writer) -> Response:
    body = await read_json(request, CreateRegistrationTokenRequest, required=False)
    row, raw = await tokens.create_token(
        ctx,
        admin_actor(request, session),
        name=body.name,
        expires_in_seconds=body.expiresInSeconds,
        agent_code=body.agentCode,
        topic_tenants=body.topicTenants,
    )
    return ok(
        {**token_view(row, ctx.clock()), "rawToken": raw, "token": raw},
        headers={"Cache-Control": "no-store"},
    )


@router.get("")
async def list_(
    ctx: Ctx,
    _: Reader,
    page_: PageNo = 1,
    page_size: PageSize = 20,
    sort: str | None = None,
    status: Annotated[list[TokenStatus] | None, Query()] = None,
) -> Response:
    order = parse_sort(sort, ("createdAt", "expiresAt", "name"))
    rows, total = await tokens.list_tokens(
        ctx, statuses=status or [], sort=order, page=page_, page_size=page_size
    )
    now = ctx.clock()
    return page([token_view(r, now) for r in rows], page=page_, page_size=page_size, total=total)


@router.post("/{tokenId}/revoke")
async def revoke(
    request: Request,
    ctx: Ctx,
    session: Writer,
    tokenId: str,
) -> Response:
    row = await tokens.revoke_token(ctx, admin_actor(request, session), tokenId)
    return ok(token_view(row, ctx.clock()))


@router.delete("/{tokenId}")
async def delete(
    request: Request,
    ctx: Ctx,
    session: Writer,
    tokenId: str,
) -> Response:
    row = await tokens.delete_token(ctx, admin_actor(request, session), tokenId)
    return ok(token_view(row, ctx.clock()))
