"""Capsule Bus routes: create, replace, delete, list — and simulate without side effects.

A route whose target action needs confirmation (HIGH/CRITICAL or ``requiresConfirmation``) is
refused unless an owner marks it pre-approved; the approval is stored, shown and audited, and
dispatch checks it again (the action may become dangerous after the route was made).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

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
from opstage.domain.records import BusEventRow, BusRouteChanges, BusRouteRow, JsonObject
from opstage.domain.redaction import mask_strings, redact

SIMULATE_MAX_EVENTS = 500


def _not_found() -> NotFound:
    return NotFound("Bus route not found.", code="BUS_ROUTE_NOT_FOUND")


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route as an operator draws it up (the edge parsed the body, ADR 0011).

    ``filters`` are the domain's filter documents (``domain/bus.py``), stored as given.
    """

    name: str
    event_type: str
    target_service_code: str
    target_action_name: str
    description: str | None = None
    status: str | None = None
    source_service_code: str | None = None
    input_mapping: dict[str, str] = field(default_factory=dict)
    filters: list[JsonObject] = field(default_factory=list)
    metadata: JsonObject = field(default_factory=dict)
    pre_approved: bool = False


def route_values(spec: RouteSpec) -> BusRouteChanges:
    """Spec → columns; PUT replaces the whole route, so defaults apply."""
    issues = filter_problems(spec.filters) + mapping_problems(spec.input_mapping)
    if issues:
        raise ValidationFailed("Bus route validation failed.", issues)
    # Free text and the operator's metadata are stored with raw tokens masked.
    return {
        "name": mask_strings(spec.name),
        "description": mask_strings(spec.description),
        "status": spec.status or RouteStatus.DISABLED,
        "event_type": spec.event_type,
        "source_service_code": spec.source_service_code,
        "target_service_code": spec.target_service_code,
        "target_action_name": spec.target_action_name,
        "input_mapping": spec.input_mapping,
        "filters": spec.filters,
        "metadata": redact(spec.metadata),
    }


async def _approval(
    uow: UnitOfWork,
    actor: Actor,
    values: BusRouteChanges,
    wants: bool,
    existing: BusRouteRow | None,
    now: datetime,
) -> BusRouteChanges:
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


def draft_route(values: BusRouteChanges, pre_approved: bool) -> BusRouteRow:
    """A route not stored (simulated as drawn up): it has no id yet, which it shows as null."""
    return cast(BusRouteRow, {**values, "id": None, "pre_approved": pre_approved})


async def create_route(ctx: UnitContext, actor: Actor, spec: RouteSpec) -> BusRouteRow:
    values = route_values(spec)
    now = ctx.clock()
    async with ctx.writer() as uow:
        values.update(await _approval(uow, actor, values, spec.pre_approved, None, now))
        row = cast(
            BusRouteRow, {**values, "id": new_id("brt"), "created_at": now, "updated_at": now}
        )
        await uow.bus_routes.insert(row)
        await _audit_change(uow, actor, "bus.route.created", row, now)
        uow.record(BusRouteChanged(row["id"], "created"))
    return row


async def replace_route(
    ctx: UnitContext, actor: Actor, route_id: str, spec: RouteSpec
) -> BusRouteRow:
    values = route_values(spec)
    now = ctx.clock()
    async with ctx.writer() as uow:
        existing = await uow.bus_routes.get(route_id)
        if existing is None:
            raise _not_found()
        values.update(await _approval(uow, actor, values, spec.pre_approved, existing, now))
        values["updated_at"] = now
        await uow.bus_routes.update(route_id, values)
        row: BusRouteRow = {**existing, **values}
        await _audit_change(uow, actor, "bus.route.updated", row, now)
        uow.record(BusRouteChanged(route_id, "updated"))
    return row


async def delete_route(ctx: UnitContext, actor: Actor, route_id: str) -> BusRouteRow:
    now = ctx.clock()
    async with ctx.writer() as uow:
        existing = await uow.bus_routes.get(route_id)
        if existing is None:
            raise _not_found()
        await uow.bus_routes.delete(route_id)
        await _audit_change(uow, actor, "bus.route.deleted", existing, now)
        uow.record(BusRouteChanged(route_id, "deleted"))
    return existing


async def _audit_change(
    uow: UnitOfWork, actor: Actor, action: str, row: BusRouteRow, now: datetime
) -> None:
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


async def get_route(ctx: UnitContext, route_id: str) -> BusRouteRow:
    async with ctx.reader() as uow:
        row = await uow.bus_routes.get(route_id)
    if row is None:
        raise _not_found()
    return row


async def list_routes(ctx: UnitContext, page: int, page_size: int) -> tuple[list[BusRouteRow], int]:
    async with ctx.reader() as uow:
        return await uow.bus_routes.list(page=page, page_size=page_size)


async def list_events(ctx: UnitContext, page: int, page_size: int) -> tuple[list[BusEventRow], int]:
    async with ctx.reader() as uow:
        return await uow.bus_events.list(page=page, page_size=page_size)


async def simulate(ctx: UnitContext, route: BusRouteRow, limit: int) -> dict[str, Any]:
    """Replay the latest stored events of the route's type through it; nothing is written."""
    limit = max(1, min(limit, SIMULATE_MAX_EVENTS))
    now = ctx.clock()
    # A what-if: the route is evaluated as if ENABLED, whatever its stored status.
    live: BusRouteRow = {**route, "status": RouteStatus.ENABLED}
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
            # The bus's admission reads rows as loose dicts (app/bus_admission.py).
            draft = cast("dict[str, Any]", live)
            event = {**event, "dry_run": False}
            loose = cast("dict[str, Any]", event)
            entry, plan = evaluate_route(draft, loose, reads, BusLimits.of(ctx.settings), now)
            counts[entry["status"]] += 1
            out = {"eventId": event["id"], "matched": True, **entry}
            if plan is not None:
                out["payload"] = plan["payload"]
            results.append(out)
    return {"evaluated": len(events), "counts": counts, "results": results}


async def _target_reads(uow: UnitOfWork, route: BusRouteRow) -> ReadSet:
    """What evaluating ``route`` reads: its target service, action and agent."""
    code, name = route["target_service_code"], route["target_action_name"]
    service = await uow.services.get_by_code(code)
    reads = ReadSet(services_by_code={code: cast("dict[str, Any] | None", service)})
    if service is not None:
        action = await uow.services.action(service["id"], name)
        agent = await uow.agents.get(service["agent_id"])
        reads.actions[(service["id"], name)] = cast("dict[str, Any] | None", action)
        reads.agents[service["agent_id"]] = cast("dict[str, Any] | None", agent)
    return reads
