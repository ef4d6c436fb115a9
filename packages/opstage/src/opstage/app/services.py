"""Capsule Services: what agents report, and what operators read.

A report is an idempotent upsert keyed by service code. Declared configs and actions are
replaced wholesale, but an action or config keeps its id across reports while its name stays.
Values of sensitive configs, and of configs whose key looks secret, are never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.app.ports import UnitOfWork
from opstage.app.repositories import SortSpec
from opstage.domain.actions import schema_problem
from opstage.domain.errors import Conflict, DomainError, NotFound
from opstage.domain.events import ServiceHealthChanged, ServiceReported
from opstage.domain.ids import new_id
from opstage.domain.records import (
    ActionRow,
    ConfigItemRow,
    JsonObject,
    ServiceChanges,
    ServiceWithAgent,
)
from opstage.domain.redaction import is_secret_key, mask_strings, redact
from opstage.domain.status import AgentStatus, service_status_for_health


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: str
    message: str | None = None
    details: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class DeclaredConfig:
    key: str
    type: str
    label: str | None = None
    source: str | None = None
    editable: bool | None = None
    sensitive: bool | None = None
    value_preview: str | None = None
    default_value: str | None = None
    secret_ref: str | None = None


@dataclass(frozen=True, slots=True)
class DeclaredAction:
    """``extra``: what the action declares beyond its columns, kept and shown as sent."""

    name: str
    label: str
    description: str | None = None
    danger_level: str | None = None
    requires_confirmation: bool | None = None
    input_schema: JsonObject | None = None
    timeout_seconds: int | None = None
    extra: JsonObject | None = None


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """One service as its agent reports it (the edge parsed it, ADR 0011).

    ``configs``/``actions``: ``None`` when the report leaves them out (the declared ones stay);
    a sequence, even empty, replaces them.
    """

    code: str
    name: str
    manifest: JsonObject
    description: str | None = None
    version: str | None = None
    runtime: str | None = None
    health: HealthReport | None = None
    configs: Sequence[DeclaredConfig] | None = None
    actions: Sequence[DeclaredAction] | None = None


def _masked(s: ServiceReport) -> ServiceReport:
    """Every string the agent sent is free text to us but its code (a checked identifier): a
    raw token in a description, a config value or an action's schema is masked on the way in."""
    m = mask_strings
    health = s.health
    return ServiceReport(
        code=s.code,
        name=m(s.name),
        manifest=m(s.manifest),
        description=m(s.description),
        version=m(s.version),
        runtime=m(s.runtime),
        health=HealthReport(m(health.status), m(health.message), m(health.details))
        if health is not None
        else None,
        configs=None
        if s.configs is None
        else [
            DeclaredConfig(
                key=m(c.key),
                type=m(c.type),
                label=m(c.label),
                source=m(c.source),
                editable=c.editable,
                sensitive=c.sensitive,
                value_preview=m(c.value_preview),
                default_value=m(c.default_value),
                secret_ref=m(c.secret_ref),
            )
            for c in s.configs
        ],
        actions=None
        if s.actions is None
        else [
            DeclaredAction(
                name=m(a.name),
                label=m(a.label),
                description=m(a.description),
                danger_level=m(a.danger_level),
                requires_confirmation=a.requires_confirmation,
                input_schema=m(a.input_schema),
                timeout_seconds=a.timeout_seconds,
                extra=m(a.extra),
            )
            for a in s.actions
        ],
    )


def _manifest_invalid(message: str, issues: list[dict[str, str]]) -> DomainError:
    return DomainError(message, code="CAPSULE_SERVICE_MANIFEST_INVALID", details={"issues": issues})


async def claim_service_codes(uow: UnitOfWork, agent_id: str, codes: Sequence[str]) -> None:
    """Refuse codes owned by another agent that is not revoked (no silent takeover)."""
    for code in codes:
        row = await uow.services.get_by_code(code)
        if (
            row is not None
            and row["agent_id"] != agent_id
            and row["agent_status"] != AgentStatus.REVOKED
        ):
            raise Conflict(
                f"Service code '{code}' belongs to another agent; an operator must move it.",
                code="CAPSULE_SERVICE_CODE_TAKEN",
                details={"serviceCode": code, "ownerAgentId": row["agent_id"]},
            )


def _config_rows(
    service_id: str, configs: Sequence[DeclaredConfig], known: dict[str, str]
) -> list[ConfigItemRow]:
    keys = [c.key for c in configs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise _manifest_invalid(
            "Config keys must be unique.",
            [{"path": "configs", "message": f"duplicate key {k!r}"} for k in dupes],
        )
    rows: list[ConfigItemRow] = []
    for pos, c in enumerate(configs):
        sensitive = bool(c.sensitive) or is_secret_key(c.key)
        rows.append(
            {
                "id": known.get(c.key) or new_id("cfg"),
                "service_id": service_id,
                "position": pos,
                "key": c.key,
                "label": c.label,
                "type": c.type,
                "source": c.source,
                "editable": bool(c.editable),
                "sensitive": sensitive,
                "value_preview": None if sensitive else c.value_preview,
                "default_value": None if sensitive else c.default_value,
                "secret_ref": c.secret_ref,
            }
        )
    return rows


def _action_rows(
    service_id: str,
    actions: Sequence[DeclaredAction],
    known: dict[str, tuple[str, datetime]],
    now: datetime,
) -> list[ActionRow]:
    names = [a.name for a in actions]
    issues = [
        {"path": "actions", "message": f"duplicate action name {n!r}"}
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    for i, a in enumerate(actions):
        if a.input_schema:
            problem = schema_problem(a.input_schema)
            if problem:
                issues.append({"path": f"actions.{i}.inputSchema", "message": problem})
    if issues:
        raise _manifest_invalid("Declared actions are not valid.", issues)
    rows: list[ActionRow] = []
    for pos, a in enumerate(actions):
        action_id, created = known.get(a.name, (new_id("act"), now))
        rows.append(
            {
                "id": action_id,
                "service_id": service_id,
                "position": pos,
                "name": a.name,
                "label": a.label,
                "description": a.description,
                "danger_level": a.danger_level or "LOW",
                "requires_confirmation": bool(a.requires_confirmation),
                "input_schema": a.input_schema or {},
                "timeout_seconds": a.timeout_seconds,
                "enabled": True,
                "extra": a.extra or None,
                "created_at": created,
                "updated_at": now,
            }
        )
    return rows


async def upsert_service(
    uow: UnitOfWork, actor: Actor, agent_id: str, s: ServiceReport, now: datetime, *, audit: bool
) -> str:
    existing = await uow.services.get_by_code(s.code)
    s = _masked(s)
    manifest = redact(s.manifest)
    values: ServiceChanges = {
        "agent_id": agent_id,
        "name": s.name,
        "description": s.description,
        "version": s.version or manifest.get("version"),
        "runtime": s.runtime or manifest.get("runtime"),
        "manifest": manifest,
        "last_reported_at": now,
        "updated_at": now,
        "retired_at": None,
    }
    health = s.health
    if health is not None:
        values.update(
            {
                "health_status": health.status,
                "health_message": health.message,
                "health_details": redact(health.details or {}),
                "health_report_id": new_id("hlr"),
                "last_health_at": now,
            }
        )
    # A report sets the stored status from the health it carries (or the health kept), which
    # also ends a STALE the sweep stored while the agent was away.
    kept = existing["health_status"] if existing is not None else "UNKNOWN"
    values["status"] = service_status_for_health(values.get("health_status", kept)).value
    if existing is None:
        service_id = new_id("svc")
        await uow.services.insert(
            {
                "id": service_id,
                "agent_id": agent_id,
                "code": s.code,
                "name": s.name,
                "description": s.description,
                "version": values["version"],
                "runtime": values["runtime"],
                "manifest": manifest,
                "status": values["status"],
                "health_status": values.get("health_status", "UNKNOWN"),
                "health_message": values.get("health_message"),
                "health_details": values.get("health_details"),
                "health_report_id": values.get("health_report_id"),
                "last_reported_at": now,
                "last_health_at": values.get("last_health_at"),
                "retired_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        known_actions: dict[str, tuple[str, datetime]] = {}
        known_configs: dict[str, str] = {}
    else:
        service_id = existing["id"]
        known_actions = await uow.services.action_ids(service_id)
        known_configs = await uow.services.config_ids(service_id)
        await uow.services.update(service_id, values)
        if existing["agent_id"] != agent_id:
            await write_audit(
                uow,
                actor,
                "service.owner.changed",
                target_type="CapsuleService",
                target_id=service_id,
                metadata={
                    "fromAgentId": existing["agent_id"],
                    "toAgentId": agent_id,
                    "reason": "previous owner revoked",
                },
                now=now,
            )
        if health is not None and existing["health_status"] != health.status:
            uow.record(ServiceHealthChanged(service_id, existing["health_status"], health.status))
    if s.configs is not None:
        await uow.services.replace_configs(
            service_id, _config_rows(service_id, s.configs, known_configs)
        )
    if s.actions is not None:
        await uow.services.replace_actions(
            service_id, _action_rows(service_id, s.actions, known_actions, now)
        )
    if audit:
        await write_audit(
            uow,
            actor,
            "service.reported",
            target_type="CapsuleService",
            target_id=service_id,
            metadata={
                "code": s.code,
                "actions": len(s.actions or []),
                "configs": len(s.configs or []),
            },
            now=now,
        )
    uow.record(ServiceReported(service_id, agent_id, s.code))
    return service_id


async def report_services(
    ctx: UnitContext, actor: Actor, agent_id: str, services: Sequence[ServiceReport]
) -> list[ServiceWithAgent]:
    codes = [s.code for s in services]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise _manifest_invalid(
            "Each service may appear once per report.",
            [{"path": "services", "message": f"duplicate code {c!r}"} for c in dupes],
        )
    now = ctx.clock()
    async with ctx.writer() as uow:
        await claim_service_codes(uow, agent_id, codes)
        ids = [await upsert_service(uow, actor, agent_id, s, now, audit=True) for s in services]
        rows = [await uow.services.get(i) for i in ids]
    return [r for r in rows if r is not None]


async def list_services(
    ctx: UnitContext,
    *,
    statuses: Sequence[str],
    health_statuses: Sequence[str],
    agent_ids: Sequence[str],
    q: str | None,
    sort: SortSpec,
    page: int,
    page_size: int,
) -> tuple[list[ServiceWithAgent], int]:
    s = ctx.settings
    async with ctx.reader() as uow:
        return await uow.services.list(
            statuses=statuses,
            health_statuses=health_statuses,
            agent_ids=agent_ids,
            q=q,
            sort=sort,
            page=page,
            page_size=page_size,
            now=ctx.clock(),
            offline_threshold_seconds=s.agent_offline_threshold_seconds,
            stale_threshold_seconds=s.health_stale_threshold_seconds,
        )


@dataclass(frozen=True, slots=True)
class ServiceDetail:
    service: ServiceWithAgent
    configs: list[ConfigItemRow]
    actions: list[ActionRow]


async def get_service(ctx: UnitContext, service_id: str) -> ServiceWithAgent:
    async with ctx.reader() as uow:
        row = await uow.services.get(service_id)
    if row is None:
        raise NotFound("Capsule Service not found.", code="CAPSULE_SERVICE_NOT_FOUND")
    return row


async def get_service_detail(ctx: UnitContext, service_id: str) -> ServiceDetail:
    """The service with its declared configs and actions, read together."""
    async with ctx.reader() as uow:
        row = await uow.services.get(service_id)
        if row is None:
            raise NotFound("Capsule Service not found.", code="CAPSULE_SERVICE_NOT_FOUND")
        configs = await uow.services.configs(service_id)
        actions = await uow.services.actions(service_id)
    return ServiceDetail(row, configs, actions)


async def transfer_service(
    ctx: UnitContext, actor: Actor, service_id: str, to_agent_id: str
) -> ServiceWithAgent:
    """Move a service to another agent: the explicit operator act that reports cannot perform."""
    now = ctx.clock()
    async with ctx.writer() as uow:
        row = await uow.services.get(service_id)
        if row is None:
            raise NotFound("Capsule Service not found.", code="CAPSULE_SERVICE_NOT_FOUND")
        target = await uow.agents.get(to_agent_id)
        if target is None:
            raise NotFound("Agent not found.", code="AGENT_NOT_FOUND")
        if target["status"] == AgentStatus.REVOKED:
            raise Conflict(
                "A revoked agent cannot own a service.",
                code="AGENT_REVOKED",
                details={"agentId": to_agent_id},
            )
        if row["agent_id"] == to_agent_id:
            return row
        await uow.services.update(service_id, {"agent_id": to_agent_id, "updated_at": now})
        await write_audit(
            uow,
            actor,
            "service.owner.changed",
            target_type="CapsuleService",
            target_id=service_id,
            metadata={
                "serviceCode": row["code"],
                "fromAgentId": row["agent_id"],
                "toAgentId": to_agent_id,
                "reason": "operator transfer",
            },
            now=now,
        )
        uow.record(ServiceReported(service_id, to_agent_id, row["code"]))
        fresh = await uow.services.get(service_id)
    assert fresh is not None
    return fresh
