"""Capsule Bus routes: create, replace, delete, list — and simulate without side effects.

A route whose target action needs confirmation (HIGH/CRITICAL or ``requiresConfirmation``) is
refused unless an owner marks it pre-approved; the approval is stored, shown and audited, and
dispatch checks it again (the action may become dangerous after the route was made).
"""

from __future__ import annotations

from typing import Any

from opstage.app.audit import write_audit
from opstage.app.bus_admission import BusLimits, ReadSet, evaluate_route
from opstage.app.context import Actor, UnitContext
from opstage.app.ports import UnitOfWork
from opstage.domain.actions import needs_confirmation
from opstage.domain.bus import (
    EntryStatus,
    RouteStatus,
    filter_problems,
    mapping_problems,
    route_matches,
)
from opstage.domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from opstage.domain.events import BusRouteChanged
from opstage.domain.ids import new_id
from opstage.domain.redaction import mask_strings, redact

Row = dict[str, Any]
SIMULATE_MAX_EVENTS = 500


def _not_found() -> NotFound:
    return NotFound("Bus route not found.", code="BUS_ROUTE_NOT_FOUND")


def route_values(body: Row) -> Row:
    """Body (the wire shape) → columns; PUT replaces the whole route, so defaults apply."""
    issues = filter_problems(body.get("filters") or []) + mapping_problems(
        body.get("inputMapping") or {}
    )
    if issues:
        raise ValidationFailed("Bus route validation failed.", issues)
    # Free text and the operator's metadata are stored with raw tokens masked.
    return {
        "name": mask_strings(body["name"]),
        "description": mask_strings(body.get("description")),
        "status": body.get("status") or RouteStatus.DISABLED,
        "event_type": body["match"]["eventType"],
        "source_service_code": body["match"].get("sourceServiceCode"),
        "target_service_code": body["target"]["serviceCode"],
        "target_action_name": body["target"]["actionName"],
        "input_mapping": body.get("inputMapping") or {},
        "filters": body.get("filters") or [],
        "metadata": redact(body.get("metadata") or {}),
    }


async def _approval(
    uow: UnitOfWork, actor: Actor, values: Row, wants: bool, existing: Row | None, now: Any
) -> Row:
    same_target = existing is not None and (
        existing["target_service_code"],
        existing["target_action_name"],
    ) == (values["target_service_code"], values["target_action_name"])
    if wants:
        if existing is not None and existing["pre_approved"] and same_target:
            return {
                "pre_approved": True,
                "pre_approved_by_user_id": existing["pre_approved_by_user_id"],
                "pre_approved_at": existing["pre_approved_at"],
            }
        if actor.role != "owner":
            raise Forbidden(
                "Only an owner can pre-approve a route to a confirmation-gated action.",
                code="BUS_ROUTE_APPROVAL_FORBIDDEN",
            )
        return {"pre_approved": True, "pre_approved_by_user_id": actor.id, "pre_approved_at": now}
    service = await uow.services.get_by_code(values["target_service_code"])
    action = (
        await uow.services.action(service["id"], values["target_action_name"]) if service else None
    )
    if action is not None and needs_confirmation(
        action["danger_level"], action["requires_confirmation"]
    ):
        raise DomainError(
            "The target action needs confirmation: an owner must pre-approve this route "
            '("preApproved": true).',
            code="BUS_ROUTE_REQUIRES_APPROVAL",
            details={"dangerLevel": action["danger_level"]},
        )
    return {"pre_approved": False, "pre_approved_by_user_id": None, "pre_approved_at": None}


async def create_route(ctx: UnitContext, actor: Actor, body: Row) -> Row:
    values = route_values(body)
    now = ctx.clock()
    async with ctx.writer() as uow:
        values.update(await _approval(uow, actor, values, bool(body.get("preApproved")), None, now))
        row = {**values, "id": new_id("brt"), "created_at": now, "updated_at": now}
        await uow.bus_routes.insert(row)
        await _audit_change(uow, actor, "bus.route.created", row, now)
        uow.record(BusRouteChanged(row["id"], "created"))
    return row


async def replace_route(ctx: UnitContext, actor: Actor, route_id: str, body: Row) -> Row:
    values = route_values(body)
    now = ctx.clock()
    async with ctx.writer() as uow:
        existing = await uow.bus_routes.get(route_id)
        if existing is None:
            raise _not_found()
        values.update(
            await _approval(uow, actor, values, bool(body.get("preApproved")), existing, now)
        )
        values["updated_at"] = now
        await uow.bus_routes.update(route_id, values)
        row = {**existing, **values}
        await _audit_change(uow, actor, "bus.route.updated", row, now)
        uow.record(BusRouteChanged(route_id, "updated"))
    return row


async def delete_route(ctx: UnitContext, actor: Actor, route_id: str) -> Row:
    now = ctx.clock()
    async with ctx.writer() as uow:
        existing = await uow.bus_routes.get(route_id)
        if existing is None:
            raise _not_found()
        await uow.bus_routes.delete(route_id)
        await _audit_change(uow, actor, "bus.route.deleted", existing, now)
        uow.record(BusRouteChanged(route_id, "deleted"))
    return dict(existing)


async def _audit_change(uow: UnitOfWork, actor: Actor, action: str, row: Row, now: Any) -> None:
    await write_audit(
        uow,
        actor,
        action,
        target_type="BusRoute",
        target_id=row["id"],
        metadata={
            "name": row["name"],
            "status": row["status"],
            "eventType": row["event_type"],
            "target": f"{row['target_service_code']}/{row['target_action_name']}",
            "preApproved": bool(row["pre_approved"]),
            "preApprovedBy": row["pre_approved_by_user_id"],
        },
        now=now,
    )


async def get_route(ctx: UnitContext, route_id: str) -> Row:
    async with ctx.reader() as uow:
        row = await uow.bus_routes.get(route_id)
    if row is None:
        raise _not_found()
    return dict(row)


async def list_routes(ctx: UnitContext, page: int, page_size: int) -> tuple[list[Row], int]:
    async with ctx.reader() as uow:
        rows, total = await uow.bus_routes.list(page=page, page_size=page_size)
    return [dict(r) for r in rows], int(total)


async def list_events(ctx: UnitContext, page: int, page_size: int) -> tuple[list[Row], int]:
    async with ctx.reader() as uow:
        rows, total = await uow.bus_events.list(page=page, page_size=page_size)
    return [dict(r) for r in rows], int(total)


async def simulate(ctx: UnitContext, route: Row, limit: int) -> Row:
    """Replay the latest stored events of the route's type through it; nothing is written."""
    limit = max(1, min(limit, SIMULATE_MAX_EVENTS))
    now = ctx.clock()
    # A what-if: the route is evaluated as if ENABLED, whatever its stored status.
    live = {**route, "status": RouteStatus.ENABLED}
    results = []
    counts = {s.value: 0 for s in EntryStatus} | {"UNMATCHED": 0}
    async with ctx.reader() as uow:
        events = await uow.bus_events.latest(route["event_type"], limit)
        for event in events:
            if not route_matches(live, event):
                counts["UNMATCHED"] += 1
                results.append({"eventId": event["id"], "matched": False})
                continue
            reads = await _target_reads(uow, live)
            event = {**event, "dry_run": False}
            entry, plan = evaluate_route(live, event, reads, BusLimits.of(ctx.settings), now)
            counts[entry["status"]] += 1
            out = {"eventId": event["id"], "matched": True, **entry}
            if plan is not None:
                out["payload"] = plan["payload"]
            results.append(out)
    return {"evaluated": len(events), "counts": counts, "results": results}


async def _target_reads(uow: UnitOfWork, route: Row) -> ReadSet:
    """What evaluating ``route`` reads: its target service, action and agent."""
    code, name = route["target_service_code"], route["target_action_name"]
    service = await uow.services.get_by_code(code)
    reads = ReadSet(services_by_code={code: service})
    if service is not None:
        reads.actions[(service["id"], name)] = await uow.services.action(service["id"], name)
        reads.agents[service["agent_id"]] = await uow.agents.get(service["agent_id"])
    return reads
