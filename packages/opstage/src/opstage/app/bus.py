"""Capsule Bus ingest and routing: an agent's event becomes operator-governed commands.

One transaction holds the event, every command it creates and every audit row, so a crash
never leaves a partial fan-out. Order of refusals (as CE v0.4): source unknown → source owned
by another agent → rate limit → depth. A refused event is neither stored nor counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.commands import check_agent_ready, insert_command
from opstage.app.context import Actor, AppContext
from opstage.app.ports import UnitOfWork
from opstage.domain.actions import needs_confirmation, payload_issues
from opstage.domain.bus import (
    EXPERIMENTAL,
    MAX_ROUTES_PER_EVENT,
    EntryStatus,
    RouteStatus,
    apply_mapping,
    depth_for,
    event_document,
    route_matches,
)
from opstage.domain.errors import DomainError, DuplicateRow, Forbidden, NotFound
from opstage.domain.events import BusEventAccepted
from opstage.domain.ids import new_id
from opstage.domain.records import BusEventRow, BusRouteRow, CommandRow, ServiceWithAgent
from opstage.domain.redaction import redact
from opstage.domain.status import CommandType
from opstage.domain.timeutil import iso, parse_iso

Row = dict[str, Any]


def bus_disabled() -> DomainError:
    return DomainError(
        "Capsule Bus is disabled; set OPSTAGE_CAPSULE_BUS_ENABLED=true to enable it.",
        code="CAPSULE_BUS_DISABLED",
    )


async def replay_for(ctx: AppContext, agent_id: str, key: str) -> Row | None:
    since = ctx.clock() - timedelta(hours=ctx.settings.capsule_bus_idempotency_hours)
    async with ctx.reader() as uow:
        found = await uow.bus_events.by_idempotency_key(agent_id, key, since)
    return _replay(found)


def replay_of(found: BusEventRow) -> Row:
    """The answer to a publish whose key is already stored (within the replay window)."""
    return _replay(found) or {
        "eventId": found["id"],
        "experimental": EXPERIMENTAL,
        "routedCommands": [],
    }


def _replay(found: BusEventRow | None) -> Row | None:
    if found is None or found["response"] is None:
        return None
    return {**found["response"], "replay": True}


async def seed_window(ctx: AppContext, agent_id: str) -> None:
    """The first publish after a start loads the agent's last minute from the database."""
    windows = ctx.bus_windows
    if not windows.seeded(agent_id):
        since = ctx.clock() - timedelta(seconds=60)
        async with ctx.reader() as uow:
            recent = await uow.bus_events.recent_accepts(
                agent_id, since, ctx.settings.capsule_bus_ingest_per_min
            )
        windows.seed(agent_id, [t.timestamp() for t in recent])


def check_source(source: ServiceWithAgent | None, body: Row, agent_id: str) -> ServiceWithAgent:
    if source is None:
        raise NotFound(
            "Source Capsule Service not found.",
            code="BUS_SOURCE_SERVICE_NOT_FOUND",
            details={"sourceServiceCode": body["sourceServiceCode"]},
        )
    if source["agent_id"] != agent_id:
        raise Forbidden(
            "The source Capsule Service belongs to another agent.",
            code="BUS_SOURCE_SERVICE_FORBIDDEN",
        )
    return source


def reserve_slot(ctx: AppContext, agent_id: str, stamp: float) -> None:
    """Take a slot in the agent's 60 s window, or refuse with BUS_RATE_LIMITED."""
    limit = ctx.settings.capsule_bus_ingest_per_min
    wait = ctx.bus_windows.reserve(agent_id, stamp, limit)
    if wait is not None:
        raise DomainError(
            "Too many bus events from this agent; slow down.",
            code="BUS_RATE_LIMITED",
            retry_after_seconds=int(wait) + 1,
            details={"limitPerMinute": limit, "retryAfterSeconds": int(wait) + 1},
        )


async def new_event(
    uow: UnitOfWork,
    ctx: AppContext,
    agent_id: str,
    source: ServiceWithAgent,
    body: Row,
    key: str | None,
    now: datetime,
) -> BusEventRow:
    """The row to store for an admitted event, after the depth guard."""
    causation_id = body.get("causationId")
    cause = await uow.bus_events.get(causation_id) if causation_id else None
    depth = depth_for(cause, causation_id)
    if depth > ctx.settings.capsule_bus_max_depth:
        raise DomainError(
            "Router-caused re-entry beyond the allowed depth.",
            code="BUS_DEPTH_EXCEEDED",
            details={"depth": depth, "maxDepth": ctx.settings.capsule_bus_max_depth},
        )
    event: BusEventRow = {
        "id": new_id("bev"),
        "agent_id": agent_id,
        "source_service_id": source["id"],
        "source_service_code": source["code"],
        "event_type": body["eventType"],
        "payload": redact(body.get("payload") or {}),
        "metadata": redact(body.get("metadata") or {}),
        "correlation_id": body.get("correlationId"),
        "causation_id": causation_id,
        "depth": depth,
        "dry_run": bool((body.get("routePolicy") or {}).get("dryRun")),
        "route_count": 0,
        "idempotency_key": key,
        "response": None,
        "occurred_at": _instant(body.get("occurredAt")),
        "accepted_at": now,
    }
    return event


async def ingest_event(
    ctx: AppContext, actor: Actor, agent_id: str, body: Row, idempotency_key: str | None
) -> Row:
    """One event in its own transaction (the batch writer's fallback, and outcome events)."""
    if idempotency_key:
        replay = await replay_for(ctx, agent_id, idempotency_key)
        if replay is not None:
            return replay
    await seed_window(ctx, agent_id)
    now = ctx.clock()
    slot: float | None = None
    try:
        async with ctx.writer() as uow:
            source = check_source(
                await uow.services.get_by_code(body["sourceServiceCode"]), body, agent_id
            )
            if idempotency_key:
                # Inside the write transaction: concurrent retries of one key see each other.
                since = now - timedelta(hours=ctx.settings.capsule_bus_idempotency_hours)
                found = await uow.bus_events.by_idempotency_key(agent_id, idempotency_key, since)
                if found is not None:
                    return replay_of(found)
                await uow.bus_events.release_idempotency_key(agent_id, idempotency_key, since)
            stamp = now.timestamp()
            reserve_slot(ctx, agent_id, stamp)
            slot = stamp
            event = await new_event(uow, ctx, agent_id, source, body, idempotency_key, now)
            response = await store_and_route(uow, ctx, actor, event)
    except DuplicateRow:
        if slot is not None:
            ctx.bus_windows.release(agent_id, slot)
        # A concurrent retry with the same key committed first: answer as its replay.
        replay = await replay_for(ctx, agent_id, idempotency_key) if idempotency_key else None
        if replay is None:
            raise
        return replay
    except BaseException:
        if slot is not None:
            ctx.bus_windows.release(agent_id, slot)
        raise
    return response


async def store_and_route(
    uow: UnitOfWork, ctx: AppContext, actor: Actor, event: BusEventRow
) -> Row:
    """Insert the event, route it, and keep the response for idempotent replays."""
    now = event["accepted_at"]
    await uow.bus_events.insert(event)
    await write_audit(
        uow,
        actor,
        "bus.event.received",
        target_type="BusEvent",
        target_id=event["id"],
        metadata={
            "eventType": event["event_type"],
            "sourceServiceCode": event["source_service_code"],
            "depth": event["depth"],
            "correlationId": event["correlation_id"],
            "causationId": event["causation_id"],
        },
        now=now,
    )
    routes = [
        r for r in await uow.bus_routes.candidates(event["event_type"]) if route_matches(r, event)
    ][:MAX_ROUTES_PER_EVENT]
    entries = []
    for route in routes:
        await write_audit(
            uow,
            actor,
            "bus.route.matched",
            target_type="BusRoute",
            target_id=route["id"],
            metadata={"eventId": event["id"], "eventType": event["event_type"]},
            now=now,
        )
        entry = await _dispatch(uow, ctx, actor, route, event, now)
        entries.append(entry)
    if not routes:
        await write_audit(
            uow,
            actor,
            "bus.route.unmatched",
            target_type="BusEvent",
            target_id=event["id"],
            metadata={"eventType": event["event_type"]},
            now=now,
        )
    response = {"eventId": event["id"], "experimental": EXPERIMENTAL, "routedCommands": entries}
    await uow.bus_events.set_outcome(event["id"], len(routes), response)
    uow.record(BusEventAccepted(event["id"], event["event_type"], event["agent_id"], len(routes)))
    return response


async def record_outcome(
    uow: UnitOfWork,
    ctx: AppContext,
    command: CommandRow,
    status: str,
    error_code: str | None,
    now: datetime,
) -> Row | None:
    """Store a bus-created command's outcome as a bus event caused by the original event.

    Routes may react to it; the depth guard ends any loop. Same transaction as the result.
    """
    cause_id = command["bus_event_id"]
    if cause_id is None:
        return None
    cause = await uow.bus_events.get(cause_id)
    service = await uow.services.get(command["service_id"])
    if cause is None or service is None:
        return None
    depth = int(cause["depth"]) + 1
    if depth > ctx.settings.capsule_bus_max_depth:
        return None
    event: BusEventRow = {
        "id": new_id("bev"),
        "agent_id": command["agent_id"],
        "source_service_id": service["id"],
        "source_service_code": service["code"],
        "event_type": f"command.{status.lower()}",
        "payload": {
            "commandId": command["id"],
            "actionName": command["action_name"],
            "status": status,
            "errorCode": error_code,
            "routeId": command["bus_route_id"],
        },
        "metadata": {"origin": "opstage.command-outcome"},
        "correlation_id": cause["correlation_id"],
        "causation_id": cause["id"],
        "depth": depth,
        "dry_run": False,
        "route_count": 0,
        "idempotency_key": None,
        "response": None,
        "occurred_at": now,
        "accepted_at": now,
    }
    return await store_and_route(uow, ctx, Actor.system(), event)


async def evaluate_route(
    uow: UnitOfWork, ctx: AppContext, route: BusRouteRow, event: BusEventRow, now: datetime
) -> tuple[Row, Row | None]:
    """What a matched route would do with this event, without writing anything.

    Returns the entry and, when a command is to be created, what it needs.
    """
    dry_run = route["status"] == RouteStatus.DRY_RUN or bool(event["dry_run"])
    entry: Row = {
        "routeId": route["id"],
        "routeName": route["name"],
        "dryRun": dry_run,  # as the reference's entries
        "targetServiceCode": route["target_service_code"],
        "actionName": route["target_action_name"],
    }
    if dry_run:
        return {**entry, "status": EntryStatus.DRY_RUN}, None

    def failed(code: str, message: str, details: Row | None = None) -> tuple[Row, None]:
        # ``errorMessage`` is the reference's name; ``message`` stays for our own clients.
        out = {
            **entry,
            "status": EntryStatus.FAILED,
            "errorCode": code,
            "errorMessage": message,
            "message": message,
        }
        if details:
            out["details"] = details
        return out, None

    service = await uow.services.get_by_code(route["target_service_code"])
    action = (
        await uow.services.action(service["id"], route["target_action_name"]) if service else None
    )
    if service is None or action is None or not action["enabled"]:
        return failed("BUS_TARGET_NOT_FOUND", "Target service or action not found.")
    if (
        needs_confirmation(action["danger_level"], action["requires_confirmation"])
        and not route["pre_approved"]
    ):
        return failed(
            "ACTION_REQUIRES_CONFIRMATION",
            "The target action needs confirmation and the route is not pre-approved by an owner.",
        )
    agent = await uow.agents.get(service["agent_id"])
    try:
        check_agent_ready(agent, now, ctx.settings.agent_offline_threshold_seconds)
    except DomainError as exc:
        return failed(exc.code, exc.message)
    document = event_document(event)
    payload: Row = {"busEvent": _bus_event_view(event), "payload": event["payload"]}
    mapping = route["input_mapping"] or {}
    if mapping:
        mapped, missing = apply_mapping(mapping, document)
        issues = missing + payload_issues(action["input_schema"], mapped)
        if issues:
            return failed(
                "BUS_INPUT_INVALID",
                "The mapped input does not satisfy the action's inputSchema.",
                {"issues": issues},
            )
        payload["mapping"] = mapped
    return {**entry, "status": EntryStatus.CREATED}, {
        "service": service,
        "action": action,
        "payload": payload,
    }


async def _dispatch(
    uow: UnitOfWork,
    ctx: AppContext,
    actor: Actor,
    route: BusRouteRow,
    event: BusEventRow,
    now: datetime,
) -> Row:
    entry, plan = await evaluate_route(uow, ctx, route, event, now)
    if plan is None:
        if entry["status"] == EntryStatus.FAILED:
            await write_audit(
                uow,
                actor,
                "bus.route.failed",
                target_type="BusRoute",
                target_id=route["id"],
                result="FAILURE",
                metadata={"eventId": event["id"], "errorCode": entry["errorCode"]},
                now=now,
            )
        return entry
    service, action = plan["service"], plan["action"]
    command_id = new_id("cmd")
    timeout = action["timeout_seconds"] or ctx.settings.command_default_timeout_seconds
    await insert_command(
        uow,
        ctx,
        command_id=command_id,
        agent_id=service["agent_id"],
        service_id=service["id"],
        type_=CommandType.ACTION_EXECUTE,
        action=action,
        payload=plan["payload"],
        confirmed=bool(route["pre_approved"]),
        user_id=None,
        retry_of=None,
        timeout=timeout,
        now=now,
        bus_event_id=event["id"],
        bus_route_id=route["id"],
    )
    await write_audit(
        uow,
        actor,
        "bus.command.created",
        target_type="Command",
        target_id=command_id,
        metadata={"eventId": event["id"], "routeId": route["id"], "serviceId": service["id"]},
        now=now,
    )
    return {**entry, "commandId": command_id}


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_iso(str(value))


def _bus_event_view(event: BusEventRow) -> Row:
    return {
        "id": event["id"],
        "eventType": event["event_type"],
        "sourceServiceCode": event["source_service_code"],
        "correlationId": event["correlation_id"],
        "causationId": event["causation_id"],
        "occurredAt": iso(event["occurred_at"]) if event["occurred_at"] else None,
        "acceptedAt": iso(event["accepted_at"]),
    }
