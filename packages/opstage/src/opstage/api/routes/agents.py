"""Operator view and controls of agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, require
from opstage.api.envelope import ok, page
from opstage.api.queries import PageNo, PageSize, parse_sort, search_text
from opstage.api.rbac import READ
from opstage.api.views import agent_view, service_view
from opstage.app import agents
from opstage.app.auth import SessionInfo
from opstage.domain.status import AgentStatus

router = APIRouter(prefix="/api/admin/agents", tags=["AdminAgents"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Writer = Annotated[SessionInfo, Depends(require("agents:write"))]


@router.get("")
async def list_(
    ctx: Ctx,
    _: Reader,
    page_: PageNo = 1,
    page_size: PageSize = 20,
    sort: str | None = None,
    status: Annotated[list[AgentStatus] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=120)] = None,
) -> Response:
    order = parse_sort(sort, ("createdAt", "lastSeenAt", "lastHeartbeatAt", "name", "code"))
    rows, total, counts = await agents.list_agents(
        ctx,
        statuses=status or [],
        q=search_text(q),
        sort=order,
        page=page_,
        page_size=page_size,
    )
    now = ctx.clock()
    return page(
        [agent_view(r, now, ctx.settings, counts.get(r["id"], 0)) for r in rows],
        page=page_,
        page_size=page_size,
        total=total,
    )


@router.get("/{agentId}")
async def get(ctx: Ctx, _: Reader, agentId: str) -> Response:
    agent, services = await agents.get_agent(ctx, agentId)
    now = ctx.clock()
    data = agent_view(agent, now, ctx.settings, len(services))
    data["services"] = [service_view(s, now, ctx.settings) for s in services]
    return ok(data)


async def _change(
    request: Request, ctx: Ctx, session: SessionInfo, agent_id: str, change: str
) -> Response:
    row = await agents.set_agent_standing(ctx, admin_actor(request, session), agent_id, change)
    return ok(agent_view(row, ctx.clock(), ctx.settings))


@router.post("/{agentId}/disable")
async def disable(
    request: Request,
    ctx: Ctx,
    session: Writer,
    agentId: str,
) -> Response:
    return await _change(request, ctx, session, agentId, "disable")


@router.post("/{agentId}/enable")
async def enable(
    request: Request,
    ctx: Ctx,
    session: Writer,
    agentId: str,
) -> Response:
    return await _change(request, ctx, session, agentId, "enable")


@router.post("/{agentId}/revoke")
async def revoke(
    request: Request,
    ctx: Ctx,
    session: Writer,
    agentId: str,
) -> Response:
    return await _change(request, ctx, session, agentId, "revoke")
