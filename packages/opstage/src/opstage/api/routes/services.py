"""Capsule Services: inventory, detail, and the operator's actions on them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok, page
from opstage.api.models import CreateActionCommandRequest, TransferServiceRequest
from opstage.api.queries import AgentIds, PageNo, PageSize, parse_sort, search_text
from opstage.api.rbac import READ
from opstage.api.views import (
    action_view,
    command_view,
    config_view,
    health_view,
    prepared_view,
    service_view,
)
from opstage.app import commands, services
from opstage.app.auth import SessionInfo
from opstage.domain.errors import NotFound
from opstage.domain.status import HealthStatus, ServiceStatus

router = APIRouter(prefix="/api/admin/capsule-services", tags=["AdminCapsuleServices"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Executor = Annotated[SessionInfo, Depends(require("actions:execute"))]
# Prepare runs agent code that may mint a secret: an operator's act, CSRF-protected even on GET.
ServiceWriter = Annotated[SessionInfo, Depends(require("services:write"))]
Preparer = Annotated[SessionInfo, Depends(require("actions:prepare", csrf=True))]


@router.get("")
async def list_(
    ctx: Ctx,
    _: Reader,
    page_: PageNo = 1,
    page_size: PageSize = 20,
    sort: str | None = None,
    status: Annotated[list[ServiceStatus] | None, Query()] = None,
    health_status: Annotated[list[HealthStatus] | None, Query(alias="healthStatus")] = None,
    agent_id: AgentIds = None,
    q: Annotated[str | None, Query(max_length=120)] = None,
) -> Response:
    order = parse_sort(sort, ("createdAt", "lastReportedAt", "code", "name"))
    rows, total = await services.list_services(
        ctx,
        statuses=status or [],
        health_statuses=health_status or [],
        agent_ids=agent_id or [],
        q=search_text(q),
        sort=order,
        page=page_,
        page_size=page_size,
    )
    now = ctx.clock()
    return page(
        [service_view(r, now, ctx.settings) for r in rows],
        page=page_,
        page_size=page_size,
        total=total,
    )


def _detail(detail: services.ServiceDetail, ctx: Ctx) -> dict[str, Any]:
    row = detail.service
    data = service_view(row, ctx.clock(), ctx.settings)
    data.update(
        manifest=row["manifest"],
        configs=[config_view(c) for c in detail.configs],
        actions=[action_view(a) for a in detail.actions],
    )
    health = health_view(row)
    if health is not None:  # no report yet: the key is absent, as HealthReport is an object
        data["health"] = health
    return data


@router.get("/{serviceId}")
async def get(ctx: Ctx, _: Reader, serviceId: str) -> Response:
    return ok(_detail(await services.get_service_detail(ctx, serviceId), ctx))


@router.get("/{serviceId}/manifest")
async def manifest(ctx: Ctx, _: Reader, serviceId: str) -> Response:
    return ok((await services.get_service(ctx, serviceId))["manifest"])


@router.get("/{serviceId}/health")
async def health(ctx: Ctx, _: Reader, serviceId: str) -> Response:
    row = await services.get_service(ctx, serviceId)
    health = health_view(row)
    if health is None:
        raise NotFound(
            "This Capsule Service has not reported its health yet.",
            code="NOT_FOUND",
            details={"serviceId": serviceId},
        )
    return ok(health)


@router.get("/{serviceId}/configs")
async def configs(ctx: Ctx, _: Reader, serviceId: str) -> Response:
    detail = await services.get_service_detail(ctx, serviceId)
    return ok([config_view(c) for c in detail.configs])


@router.get("/{serviceId}/actions")
async def actions(ctx: Ctx, _: Reader, serviceId: str) -> Response:
    detail = await services.get_service_detail(ctx, serviceId)
    return ok([action_view(a) for a in detail.actions])


@router.get("/{serviceId}/actions/{actionName}")
async def prepare(
    request: Request, ctx: Ctx, session: Preparer, serviceId: str, actionName: str
) -> Response:
    out = await commands.prepare_action(ctx, admin_actor(request, session), serviceId, actionName)
    return ok(
        prepared_view(out.action, out.command, out.result), headers={"Cache-Control": "no-store"}
    )


@router.post("/{serviceId}/actions/{actionName}")
async def execute(
    request: Request, ctx: Ctx, session: Executor, serviceId: str, actionName: str
) -> Response:
    body = await read_json(request, CreateActionCommandRequest, required=False)
    row = await commands.request_action(
        ctx, admin_actor(request, session), serviceId, actionName, body.payload, body.confirmation
    )
    return ok(command_view(row))


@router.post("/{serviceId}/transfer")
async def transfer(request: Request, ctx: Ctx, session: ServiceWriter, serviceId: str) -> Response:
    """Extension (docs/compatibility.md): move a service to another agent, audited."""
    body = await read_json(request, TransferServiceRequest)
    row = await services.transfer_service(
        ctx, admin_actor(request, session), serviceId, body.agentId
    )
    return ok(_detail(await services.get_service_detail(ctx, row["id"]), ctx))
