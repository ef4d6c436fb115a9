"""Capsule Bus admission: every ingest rule, written once, as a pure function (ADR 0009).

``admit`` takes a batch of publishes, the rows its rules read (a ``ReadSet``) and the agents'
rate windows, and returns each publish's answer (its response, or the ``DomainError`` that
refuses it) with the rows and domain events to write for the events it admitted. It does no
I/O: the ingest strategies (``app/bus.py``: a unit of work; ``app/bus_batch.py``: group
commit, pipelined on SQLite) differ only in how they read the read set and flush the writes.

Per event, in this order (ADR 0009): source service unknown → source owned by another agent
→ replay of a stored idempotency key → rate limit → depth guard → stored, audited, routed.
A refused event writes nothing and holds no rate slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opstage.app.audit import audit_row
from opstage.app.bus_window import IngestWindows
from opstage.app.context import Actor
from opstage.app.dispatch import check_agent_ready, command_row
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
from opstage.domain.errors import DomainError, Forbidden, NotFound
from opstage.domain.events import BusEventAccepted, DomainEvent
from opstage.domain.ids import new_id
from opstage.domain.redaction import redact
from opstage.domain.status import CommandType
from opstage.domain.timeutil import iso, parse_iso
from opstage.settings import Settings

Row = dict[str, Any]
KeyPair = tuple[str, str]  # (agent id, idempotency key)


@dataclass(frozen=True, slots=True)
class Publish:
    actor: Actor
    agent_id: str
    body: Row  # the wire body, validated
    key: str | None  # Idempotency-Key (or eventId)


@dataclass(frozen=True, slots=True)
class BusLimits:
    per_minute: int
    max_depth: int
    idempotency_hours: int
    offline_threshold_seconds: int
    default_timeout_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> BusLimits:
        return cls(
            per_minute=settings.capsule_bus_ingest_per_min,
            max_depth=settings.capsule_bus_max_depth,
            idempotency_hours=settings.capsule_bus_idempotency_hours,
            offline_threshold_seconds=settings.agent_offline_threshold_seconds,
            default_timeout_seconds=settings.command_default_timeout_seconds,
        )


@dataclass(frozen=True, slots=True)
class Wants:
    """What a batch's rules read: the read set a strategy must fetch before ``admit``."""

    source_codes: list[str]
    event_types: list[str]
    cause_ids: list[str]
    key_pairs: list[KeyPair]

    @classmethod
    def of(cls, batch: Sequence[Publish]) -> Wants:
        return cls(
            sorted({str(p.body["sourceServiceCode"]) for p in batch}),
            sorted({str(p.body["eventType"]) for p in batch}),
            sorted({str(p.body["causationId"]) for p in batch if p.body.get("causationId")}),
            sorted({(p.agent_id, p.key) for p in batch if p.key}),
        )


@dataclass
class ReadSet:
    """The rows admission reads, as ``BusRouteRepo.references`` and
    ``BusEventRepo.by_idempotency_keys`` return them. A row the rules need and the strategy
    did not read is a ``KeyError``: a bug in the strategy, never a silent miss."""

    services_by_code: dict[str, Row | None] = field(default_factory=dict)
    routes_by_type: dict[str, list[Row]] = field(default_factory=dict)  # live, oldest first
    actions: dict[tuple[str, str], Row | None] = field(default_factory=dict)
    agents: dict[str, Row | None] = field(default_factory=dict)
    events: dict[str, Row | None] = field(default_factory=dict)  # causes, by id
    keys: dict[KeyPair, Row] = field(default_factory=dict)  # stored events, whatever their age

    @classmethod
    def of(cls, references: Any, keys: dict[KeyPair, Row]) -> ReadSet:
        return cls(
            dict(references.services_by_code),
            dict(references.routes_by_type),
            dict(references.actions),
            dict(references.agents),
            dict(references.events),
            dict(keys),
        )

    def covers(self, wants: Wants) -> bool:
        """Whether every reference ``wants`` names is here (idempotency keys aside)."""
        return (
            all(c in self.services_by_code for c in wants.source_codes)
            and all(t in self.routes_by_type for t in wants.event_types)
            and all(c in self.events for c in wants.cause_ids)
        )

    def merge(self, other: ReadSet) -> None:
        """Add ``other``'s references (read later, at the same database version)."""
        self.services_by_code.update(other.services_by_code)
        self.routes_by_type.update(other.routes_by_type)
        self.actions.update(other.actions)
        self.agents.update(other.agents)
        self.events.update(other.events)
        self.keys = other.keys


@dataclass
class Writes:
    """What admitted events leave to write: rows per table, and the domain events."""

    bus_events: list[Row] = field(default_factory=list)
    commands: list[Row] = field(default_factory=list)
    audit: list[Row] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    # Keys stored before the replay window: free them (before the inserts) for a new event.
    expired_keys: list[KeyPair] = field(default_factory=list)

    def rows_by_table(self) -> list[tuple[str, list[Row]]]:
        # Foreign keys: commands point at their bus event.
        return [
            ("bus_events", self.bus_events),
            ("commands", self.commands),
            ("audit_events", self.audit),
        ]

    def mark(self) -> tuple[int, int, int, int]:
        return len(self.bus_events), len(self.commands), len(self.audit), len(self.events)

    def rollback_to(self, mark: tuple[int, int, int, int]) -> None:
        del self.bus_events[mark[0] :]
        del self.commands[mark[1] :]
        del self.audit[mark[2] :]
        del self.events[mark[3] :]


@dataclass
class Admission:
    outcomes: list[Row | DomainError]  # one per publish, in order
    writes: Writes
    slots: list[tuple[str, float]]  # rate slots the admitted events hold: give back on failure


def admit(
    batch: Sequence[Publish],
    reads: ReadSet,
    limits: BusLimits,
    windows: IngestWindows,
    now: datetime,
) -> Admission:
    """Every publish's rules, in order; a refused publish is refused alone."""
    since = now - timedelta(hours=limits.idempotency_hours)
    writes = Writes()
    outcomes: list[Row | DomainError] = []
    slots: list[tuple[str, float]] = []
    accepted: dict[KeyPair, Row] = {}
    freed: set[KeyPair] = set()
    try:
        for item in batch:
            mark = writes.mark()
            try:
                outcome, slot = _admit_one(
                    item, reads, limits, windows, now, since, writes, accepted, freed
                )
            except DomainError as exc:
                writes.rollback_to(mark)
                outcomes.append(exc)
                continue
            if slot is not None:
                slots.append(slot)
            outcomes.append(outcome)
    except BaseException:
        release(windows, slots)
        raise
    return Admission(outcomes, writes, slots)


def release(windows: IngestWindows, slots: Sequence[tuple[str, float]]) -> None:
    for agent_id, stamp in slots:
        windows.release(agent_id, stamp)


def _admit_one(
    item: Publish,
    reads: ReadSet,
    limits: BusLimits,
    windows: IngestWindows,
    now: datetime,
    since: datetime,
    writes: Writes,
    accepted: dict[KeyPair, Row],
    freed: set[KeyPair],
) -> tuple[Row, tuple[str, float] | None]:
    body, agent_id, key = item.body, item.agent_id, item.key
    source = check_source(reads.services_by_code[body["sourceServiceCode"]], body, agent_id)
    if key:
        earlier = accepted.get((agent_id, key))
        if earlier is not None:  # the same key twice in one batch: the second is a replay
            return {**earlier, "replay": True}, None
        found = reads.keys.get((agent_id, key))
        if found is not None and (agent_id, key) not in freed:
            if found["accepted_at"] >= since:
                return replay_of(found), None
            writes.expired_keys.append((agent_id, key))
            freed.add((agent_id, key))
    stamp = now.timestamp()
    wait = windows.reserve(agent_id, stamp, limits.per_minute)
    if wait is not None:
        raise DomainError(
            "Too many bus events from this agent; slow down.",
            code="BUS_RATE_LIMITED",
            retry_after_seconds=int(wait) + 1,
            details={"limitPerMinute": limits.per_minute, "retryAfterSeconds": int(wait) + 1},
        )
    try:
        causation_id = body.get("causationId")
        cause = _cause(reads, writes, causation_id) if causation_id else None
        depth = depth_for(cause, causation_id)
        if depth > limits.max_depth:
            raise DomainError(
                "Router-caused re-entry beyond the allowed depth.",
                code="BUS_DEPTH_EXCEEDED",
                details={"depth": depth, "maxDepth": limits.max_depth},
            )
        event = bus_event_row(
            agent_id=agent_id,
            source=source,
            event_type=body["eventType"],
            payload=redact(body.get("payload") or {}),
            metadata=redact(body.get("metadata") or {}),
            correlation_id=body.get("correlationId"),
            causation_id=causation_id,
            depth=depth,
            dry_run=bool((body.get("routePolicy") or {}).get("dryRun")),
            key=key,
            occurred_at=_instant(body.get("occurredAt")),
            now=now,
        )
        response = route_event(writes, reads, limits, item.actor, event)
    except BaseException:
        windows.release(agent_id, stamp)
        raise
    if key:
        accepted[(agent_id, key)] = response
    return response, (agent_id, stamp)


def _cause(reads: ReadSet, writes: Writes, event_id: str) -> Row | None:
    for row in writes.bus_events:  # admitted earlier in this batch
        if row["id"] == event_id:
            return row
    return reads.events[event_id]


def check_source(source: Row | None, body: Row, agent_id: str) -> Row:
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


def replay_of(found: Row) -> Row:
    """The answer to a publish whose key is already stored (within the replay window)."""
    if found["response"] is not None:
        return {**found["response"], "replay": True}
    return {"eventId": found["id"], "experimental": EXPERIMENTAL, "routedCommands": []}


def bus_event_row(
    *,
    agent_id: str,
    source: Row,
    event_type: str,
    payload: Row,
    metadata: Row,
    correlation_id: str | None,
    causation_id: str | None,
    depth: int,
    dry_run: bool,
    key: str | None,
    occurred_at: datetime | None,
    now: datetime,
) -> Row:
    """A new bus event's row (routing fills ``route_count`` and ``response``)."""
    return {
        "id": new_id("bev"),
        "agent_id": agent_id,
        "source_service_id": source["id"],
        "source_service_code": source["code"],
        "event_type": event_type,
        "payload": payload,
        "metadata": metadata,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "depth": depth,
        "dry_run": dry_run,
        "route_count": 0,
        "idempotency_key": key,
        "response": None,
        "occurred_at": occurred_at,
        "accepted_at": now,
    }


def outcome_event(
    command: Row, cause: Row, service: Row, status: str, error_code: str | None, now: datetime
) -> Row:
    """A bus-created command's outcome as a bus event caused by the original event."""
    return bus_event_row(
        agent_id=command["agent_id"],
        source=service,
        event_type=f"command.{status.lower()}",
        payload={
            "commandId": command["id"],
            "actionName": command["action_name"],
            "status": status,
            "errorCode": error_code,
            "routeId": command.get("bus_route_id"),
        },
        metadata={"origin": "opstage.command-outcome"},
        correlation_id=cause["correlation_id"],
        causation_id=cause["id"],
        depth=int(cause["depth"]) + 1,
        dry_run=False,
        key=None,
        occurred_at=now,
        now=now,
    )


def route_event(writes: Writes, reads: ReadSet, limits: BusLimits, actor: Actor, event: Row) -> Row:
    """Store the event, route it, and keep the response for idempotent replays."""
    now = event["accepted_at"]
    writes.bus_events.append(event)
    _audit(
        writes,
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
    routes = [r for r in reads.routes_by_type[event["event_type"]] if route_matches(r, event)]
    routes = routes[:MAX_ROUTES_PER_EVENT]
    entries = []
    for route in routes:
        _audit(
            writes,
            actor,
            "bus.route.matched",
            target_type="BusRoute",
            target_id=route["id"],
            metadata={"eventId": event["id"], "eventType": event["event_type"]},
            now=now,
        )
        entries.append(_dispatch(writes, reads, limits, actor, route, event, now))
    if not routes:
        _audit(
            writes,
            actor,
            "bus.route.unmatched",
            target_type="BusEvent",
            target_id=event["id"],
            metadata={"eventType": event["event_type"]},
            now=now,
        )
    response = {"eventId": event["id"], "experimental": EXPERIMENTAL, "routedCommands": entries}
    event["route_count"], event["response"] = len(routes), response
    writes.events.append(
        BusEventAccepted(event["id"], event["event_type"], event["agent_id"], len(routes))
    )
    return response


def evaluate_route(
    route: Row, event: Row, reads: ReadSet, limits: BusLimits, now: datetime
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

    service = reads.services_by_code[route["target_service_code"]]
    action = reads.actions[(service["id"], route["target_action_name"])] if service else None
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
    try:
        check_agent_ready(reads.agents[service["agent_id"]], now, limits.offline_threshold_seconds)
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


def _dispatch(
    writes: Writes,
    reads: ReadSet,
    limits: BusLimits,
    actor: Actor,
    route: Row,
    event: Row,
    now: datetime,
) -> Row:
    entry, plan = evaluate_route(route, event, reads, limits, now)
    if plan is None:
        if entry["status"] == EntryStatus.FAILED:
            _audit(
                writes,
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
    command, created = command_row(
        command_id=new_id("cmd"),
        agent_id=service["agent_id"],
        service_id=service["id"],
        type_=CommandType.ACTION_EXECUTE,
        action=action,
        payload=plan["payload"],
        confirmed=bool(route["pre_approved"]),
        user_id=None,
        retry_of=None,
        timeout=action["timeout_seconds"] or limits.default_timeout_seconds,
        now=now,
        bus_event_id=event["id"],
        bus_route_id=route["id"],
    )
    writes.commands.append(command)
    writes.events.append(created)
    _audit(
        writes,
        actor,
        "bus.command.created",
        target_type="Command",
        target_id=command["id"],
        metadata={"eventId": event["id"], "routeId": route["id"], "serviceId": service["id"]},
        now=now,
    )
    return {**entry, "commandId": command["id"]}


def _audit(writes: Writes, actor: Actor, action: str, **fields: Any) -> None:
    row, recorded = audit_row(actor, action, **fields)
    writes.audit.append(row)
    writes.events.append(recorded)


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_iso(str(value))


def _bus_event_view(event: Row) -> Row:
    return {
        "id": event["id"],
        "eventType": event["event_type"],
        "sourceServiceCode": event["source_service_code"],
        "correlationId": event["correlation_id"],
        "causationId": event["causation_id"],
        "occurredAt": iso(event["occurred_at"]) if event["occurred_at"] else None,
        "acceptedAt": iso(event["accepted_at"]),
    }
