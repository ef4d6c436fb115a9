"""Capsule Bus endpoints (experimental, behind OPSTAGE_CAPSULE_BUS_ENABLED).

The flag is checked after authentication, CSRF and role, so an anonymous caller learns
nothing (401) and a disabled bus answers ``404 CAPSULE_BUS_DISABLED`` only to the entitled.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok, page
from opstage.api.models import BusRouteRequest, SimulateRequest
from opstage.api.queries import PageNo, PageSize
from opstage.api.rbac import READ
from opstage.api.views import audit_view
from opstage.app import audit, bus, bus_routes
from opstage.app.auth import SessionInfo
from opstage.domain.bus import EXPERIMENTAL
from opstage.domain.timeutil import iso

router = APIRouter(tags=["CapsuleBus"])


def _enabled(ctx: Ctx) -> None:
    if not ctx.settings.capsule_bus_enabled:
        raise bus.bus_disabled()


def _reader_gate(ctx: Ctx, session: Annotated[SessionInfo, Depends(require(READ))]) -> SessionInfo:
    _enabled(ctx)
    return session


def _writer_gate(
    ctx: Ctx, session: Annotated[SessionInfo, Depends(require("bus:write"))]
) -> SessionInfo:
    _enabled(ctx)
    return session


Reader = Annotated[SessionInfo, Depends(_reader_gate)]
Writer = Annotated[SessionInfo, Depends(_writer_gate)]


def route_view(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "description": r["description"],
        "status": r["status"],
        "match": {"eventType": r["event_type"], "sourceServiceCode": r["source_service_code"]},
        "target": {"serviceCode": r["target_service_code"], "actionName": r["target_action_name"]},
        "inputMapping": r["input_mapping"],
        "filters": r["filters"],
        "metadata": r["metadata"],
        "preApproved": bool(r["pre_approved"]),
        "preApprovedByUserId": r["pre_approved_by_user_id"],
        "preApprovedAt": iso(r["pre_approved_at"]),
        "createdAt": iso(r["created_at"]),
        "updatedAt": iso(r["updated_at"]),
        "experimental": EXPERIMENTAL,  # on the route object itself, as the reference's
    }


def event_view(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": e["id"],
        "agentId": e["agent_id"],
        "sourceServiceId": e["source_service_id"],
        "sourceServiceCode": e["source_service_code"],
        "eventType": e["event_type"],
        "payload": e["payload"],
        "metadata": e["metadata"],
        "correlationId": e["correlation_id"],
        "causationId": e["causation_id"],
        "depth": e["depth"],
        "dryRun": bool(e["dry_run"]),
        "routeCount": e["route_count"],
        "occurredAt": iso(e["occurred_at"]),
        "acceptedAt": iso(e["accepted_at"]),
        "experimental": EXPERIMENTAL,
    }


@router.get("/api/admin/bus/routes")
async def list_routes(ctx: Ctx, _: Reader, page_: PageNo = 1, page_size: PageSize = 20) -> Response:
    rows, total = await bus_routes.list_routes(ctx, page_, page_size)
    return page(
        [route_view(r) for r in rows],
        page=page_,
        page_size=page_size,
        total=total,
        experimental=EXPERIMENTAL,
    )


@router.post("/api/admin/bus/routes")
async def create_route(request: Request, ctx: Ctx, session: Writer) -> Response:
    body = await read_json(request, BusRouteRequest)
    row = await bus_routes.create_route(ctx, admin_actor(request, session), body.model_dump())
    return ok(route_view(row), experimental=EXPERIMENTAL)


@router.post("/api/admin/bus/routes/simulate")
async def simulate_draft(request: Request, ctx: Ctx, session: Writer) -> Response:
    body = await read_json(request, SimulateRequest)
    if body.route is None:
        from opstage.domain.errors import ValidationFailed

        raise ValidationFailed(
            "Request body validation failed.",
            [{"path": "route", "message": "a draft route is required"}],
        )
    draft = {
        **bus_routes.route_values(body.route.model_dump()),
        "id": None,
        "pre_approved": body.route.preApproved,
    }
    return ok(await bus_routes.simulate(ctx, draft, body.limit), experimental=EXPERIMENTAL)


@router.get("/api/admin/bus/routes/{routeId}")
async def get_route(ctx: Ctx, _: Reader, routeId: str) -> Response:
    return ok(route_view(await bus_routes.get_route(ctx, routeId)), experimental=EXPERIMENTAL)


@router.put("/api/admin/bus/routes/{routeId}")
async def replace_route(request: Request, ctx: Ctx, session: Writer, routeId: str) -> Response:
    body = await read_json(request, BusRouteRequest)
    row = await bus_routes.replace_route(
        ctx, admin_actor(request, session), routeId, body.model_dump()
    )
    return ok(route_view(row), experimental=EXPERIMENTAL)


@router.delete("/api/admin/bus/routes/{routeId}")
async def delete_route(request: Request, ctx: Ctx, session: Writer, routeId: str) -> Response:
    row = await bus_routes.delete_route(ctx, admin_actor(request, session), routeId)
    return ok(route_view(row), experimental=EXPERIMENTAL)


@router.post("/api/admin/bus/routes/{routeId}/simulate")
async def simulate(request: Request, ctx: Ctx, session: Writer, routeId: str) -> Response:
    body = await read_json(request, SimulateRequest, required=False)
    route = await bus_routes.get_route(ctx, routeId)
    return ok(await bus_routes.simulate(ctx, route, body.limit), experimental=EXPERIMENTAL)


@router.get("/api/admin/bus/events")
async def list_events(ctx: Ctx, _: Reader, page_: PageNo = 1, page_size: PageSize = 20) -> Response:
    rows, total = await bus_routes.list_events(ctx, page_, page_size)
    return page(
        [event_view(e) for e in rows],
        page=page_,
        page_size=page_size,
        total=total,
        experimental=EXPERIMENTAL,
    )


@router.get("/api/admin/bus/audit")
async def list_audit(ctx: Ctx, _: Reader, page_: PageNo = 1, page_size: PageSize = 20) -> Response:
    rows, total = await audit.list_audit(ctx, action_prefix="bus.", page=page_, page_size=page_size)
    return page(
        [audit_view(e) for e in rows],
        page=page_,
        page_size=page_size,
        total=total,
        experimental=EXPERIMENTAL,
    )
