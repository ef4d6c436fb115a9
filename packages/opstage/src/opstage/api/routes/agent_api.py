"""The agent-facing API (bearer agent token): register, report, result.

Heartbeat and poll are served by ``api/hotpath.py`` alone (ADR 0001).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from opstage.api.deps import Agent, Ctx, read_json, request_actor
from opstage.api.envelope import ok
from opstage.api.models import (
    CommandResultRequest,
    RegisterAgentRequest,
    ServiceReportRequest,
)
from opstage.api.views import result_view, service_view
from opstage.app import agents, commands, services
from opstage.app.context import AppContext
from opstage.app.system import capabilities

router = APIRouter(prefix="/api/agents", tags=["Agent"])


def timing(ctx: AppContext) -> dict[str, object]:
    s = ctx.settings
    return {
        "heartbeatIntervalSeconds": s.heartbeat_interval_seconds,
        "commandPollIntervalSeconds": s.command_poll_interval_seconds,
        "capabilities": capabilities(ctx),
    }


@router.post("/register")
async def register(request: Request, ctx: Ctx) -> Response:
    body = await read_json(request, RegisterAgentRequest)
    data = await agents.register_agent(ctx, request_actor(request, type_="AGENT"), body.dump())
    return ok({**data, **timing(ctx)})


@router.post("/{agentId}/services/report")
async def report(request: Request, ctx: Ctx, agent: Agent) -> Response:
    body = await read_json(request, ServiceReportRequest)
    actor = request_actor(request, type_="AGENT", id_=agent.agent_id)
    rows = await services.report_services(
        ctx, actor, agent.agent_id, [s.dump() for s in body.services]
    )
    now = ctx.clock()
    return ok({"services": [service_view(r, now, ctx.settings) for r in rows]})


@router.post("/{agentId}/commands/{commandId}/result")
async def result(
    request: Request,
    ctx: Ctx,
    agent: Agent,
    commandId: str,
) -> Response:
    # The result cap (OPSTAGE_COMMAND_RESULT_MAX_BYTES) governs this body, plus room for the
    # envelope fields, so an oversized result is named as such rather than as a generic 413.
    cap = ctx.settings.command_result_max_bytes
    body = await read_json(
        request,
        CommandResultRequest,
        limit=max(ctx.settings.request_body_max_bytes, cap + 65_536),
        too_large_code="COMMAND_RESULT_TOO_LARGE",
    )
    row = await commands.report_result(ctx, agent, commandId, body.dump())
    return ok(result_view(row, agent.agent_id))
