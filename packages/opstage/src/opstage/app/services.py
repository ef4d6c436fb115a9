"""Capsule Services: what agents report, and what operators read.

A report is an idempotent upsert keyed by service code. Declared configs and actions are
replaced wholesale, but an action or config keeps its id across reports while its name stays.
Values of sensitive configs, and of configs whose key looks secret, are never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.app.ports import UnitOfWork
from opstage.domain.actions import schema_problem
from opstage.domain.errors import Conflict, DomainError, NotFound
from opstage.domain.events import ServiceHealthChanged, ServiceReported
from opstage.domain.ids import new_id
from opstage.domain.redaction import is_secret_key, mask_strings, redact
from opstage.domain.status import AgentStatus, service_status_for_health


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
    service_id: str, configs: list[dict[str, Any]], known: dict[str, str]
) -> list[dict[str, Any]]:
    keys = [c["key"] for c in configs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise _manifest_invalid(
            "Config keys must be unique.",
            [{"path": "configs", "message": f"duplicate key {k!r}"} for k in dupes],
        )
    rows = []
    for pos, c in enumerate(configs):
        sensitive = bool(c.get("sensitive")) or is_secret_key(c["key"])
        rows.append(
            {
                "id": known.get(c["key"]) or new_id("cfg"),
                "service_id": service_id,
                "position": pos,
                "key": c["key"],
                "label": c.get("label"),
                "type": c["type"],
                "source": c.get("source"),
                "editable": bool(c.get("editable", False)),
                "sensitive": sensitive,
                "value_preview": None if sensitive else c.get("valuePreview"),
                "default_value": None if sensitive else c.get("defaultValue"),
                "secret_ref": c.get("secretRef"),
            }
        )
    return rows


def _action_rows(
    service_id: str,
    actions: list[dict[str, Any]],
    known: dict[str, tuple[str, datetime]],
    now: datetime,
) -> list[dict[str, Any]]:
    names = [a["name"] for a in actions]
    issues = [
        {"path": "actions", "message": f"duplicate action name {n!r}"}
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    for i, a in enumerate(actions):
        schema = a.get("inputSchema")
        if schema:
            problem = schema_problem(schema)
            if problem:
                issues.append({"path": f"actions.{i}.inputSchema", "message": problem})
    if issues:
        raise _manifest_invalid("Declared actions are not valid.", issues)
    rows = []
    for pos, a in enumerate(actions):
        action_id, created = known.get(a["name"], (new_id("act"), now))
        extra = {k: a[k] for k in ("category", "order", "outputSchema") if k in a}
        rows.append(
            {
                "id": action_id,
                "service_id": service_id,
                "position": pos,
                "name": a["name"],
                "label": a["label"],
                "description": a.get("description"),
                "danger_level": a.get("dangerLevel") or "LOW",
                "requires_confirmation": bool(a.get("requiresConfirmation", False)),
                "input_schema": a.get("inputSchema") or {},
                "timeout_seconds": a.get("timeoutSeconds"),
                "enabled": True,
                "extra": extra or None,
                "created_at": created,
                "updated_at": now,
            }
        )
    return rows


async def upsert_service(
    uow: UnitOfWork, actor: Actor, agent_id: str, s: dict[str, Any], now: datetime, *, audit: bool
) -> str:
    existing = await uow.services.get_by_code(s["code"])
    # Every string the agent sent is free text to us but its code (a checked identifier): a
    # raw token in a description, a config value or an action's schema is masked on the way in.
    s = {**mask_strings({k: v for k, v in s.items() if k != "code"}), "code": s["code"]}
    manifest = redact(s["manifest"])
    values: dict[str, Any] = {
        "agent_id": agent_id,
        "name": s["name"],
        "description": s.get("description"),
        "version": s.get("version") or manifest.get("version"),
        "runtime": s.get("runtime") or manifest.get("runtime"),
        "manifest": manifest,
        "last_reported_at": now,
        "updated_at": now,
        "retired_at": None,
    }
    health = s.get("health")
    if health is not None:
        values.update(
            {
                "health_status": health["status"],
                "health_message": health.get("message"),
                "health_details": redact(health.get("details") or {}),
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
        values.setdefault("health_status", "UNKNOWN")
        await uow.services.insert(
            {**values, "id": service_id, "code": s["code"], "created_at": now}
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
        if health is not None and existing["health_status"] != health["status"]:
            uow.record(
                ServiceHealthChanged(service_id, existing["health_status"], health["status"])
            )
    if "configs" in s:
        await uow.services.replace_configs(
            service_id, _config_rows(service_id, s["configs"] or [], known_configs)
        )
    if "actions" in s:
        await uow.services.replace_actions(
            service_id, _action_rows(service_id, s["actions"] or [], known_actions, now)
        )
    if audit:
        await write_audit(
            uow,
            actor,
            "service.reported",
            target_type="CapsuleService",
            target_id=service_id,
            metadata={
                "code": s["code"],
                "actions": len(s.get("actions") or []),
                "configs": len(s.get("configs") or []),
            },
            now=now,
        )
    uow.record(ServiceReported(service_id, agent_id, s["code"]))
    return service_id


async def report_services(
    ctx: UnitContext, actor: Actor, agent_id: str, services: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    codes = [s["code"] for s in services]
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
    sort: Sequence[tuple[str, bool]],
    page: int,
    page_size: int,
) -> tuple[list[dict[str, Any]], int]:
    s = ctx.settings
    async with ctx.reader() as uow:
        return await uow.services.list(  # type: ignore[no-any-return]
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


async def get_service(
    ctx: UnitContext, service_id: str, *, with_children: bool = True
) -> dict[str, Any]:
    async with ctx.reader() as uow:
        row = await uow.services.get(service_id)
        if row is None:
            raise NotFound("Capsule Service not found.", code="CAPSULE_SERVICE_NOT_FOUND")
        if with_children:
            row["configs"] = await uow.services.configs(service_id)
            row["actions"] = await uow.services.actions(service_id)
    return dict(row)


async def transfer_service(
    ctx: UnitContext, actor: Actor, service_id: str, to_agent_id: str
) -> dict[str, Any]:
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
            return dict(row)
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
    return dict(fresh)
