"""One maintenance run: record what time alone changes, then prune what retention allows.

- Agents silent past ``agentOfflineThresholdSeconds`` are stored OFFLINE (reads derive it already)
  and their services follow: each agent is audited ``system.agent.offline`` and each of its
  services ``system.service.offline``, with ``AgentStatusChanged`` / ``ServiceStatusChanged``.
- Pending or running commands past ``expiresAt`` become EXPIRED (``system.command.expired``).
- Active registration tokens past expiry become EXPIRED (``registration_token.expired``).
- Expired admin sessions are deleted.
- Audit older than ``auditRetentionDays`` is deleted in batches (0 keeps everything).

Every step is its own short write transaction (batches of at most ``BATCH`` rows), so a large
backlog never holds the write lock for long. A run that changed something is itself audited
``maintenance.run`` (SYSTEM); a run an admin asked for is audited ``maintenance.triggered`` with
that admin as actor, whether or not it changed anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opstage.app import maintenance_settings
from opstage.app.audit import prune_audit, write_audit
from opstage.app.commands import expire_due_commands
from opstage.app.context import Actor, AppContext
from opstage.app.event_log import prune_event_log
from opstage.domain.events import (
    AgentStatusChanged,
    RegistrationTokenChanged,
    ServiceStatusChanged,
)
from opstage.domain.status import AgentStatus, effective_service_status
from opstage.domain.timeutil import iso

# Results that alone do not make a run worth an audit row (they happen on nearly every run).
HOUSEKEEPING = frozenset({"ranAt", "expiredSessions", "prunedDomainEvents"})
BATCH = 500
MAX_BATCHES = 1000  # a bound, not a target: 500k transitions in one run


async def mark_offline_agents(ctx: AppContext, now: datetime) -> tuple[int, int]:
    """Agents silent past the threshold → OFFLINE, and their services with them."""
    s = ctx.settings
    cutoff = now - timedelta(seconds=s.agent_offline_threshold_seconds)
    agents = services = 0
    for _ in range(MAX_BATCHES):
        async with ctx.writer() as uow:
            stale = await uow.agents.stale_live(cutoff, BATCH)
            for agent in stale:
                if not await uow.agents.mark_offline_if_stale(agent["id"], cutoff, now):
                    continue  # a heartbeat got there first
                followed = []
                for svc in await uow.services.by_agent(agent["id"]):
                    before = effective_service_status(
                        AgentStatus.ONLINE,
                        svc["health_status"],
                        svc["last_health_at"],
                        now,
                        s.health_stale_threshold_seconds,
                    ).value
                    followed.append(svc["id"])
                    await write_audit(
                        uow,
                        Actor.system(),
                        "system.service.offline",
                        target_type="CapsuleService",
                        target_id=svc["id"],
                        metadata={"agentId": agent["id"], "fromStatus": before},
                        now=now,
                    )
                    uow.record(ServiceStatusChanged(svc["id"], agent["id"], before, "OFFLINE"))
                await write_audit(
                    uow,
                    Actor.system(),
                    "system.agent.offline",
                    target_type="Agent",
                    target_id=agent["id"],
                    metadata={
                        "fromStatus": agent["status"],
                        "thresholdSeconds": s.agent_offline_threshold_seconds,
                        "services": len(followed),
                    },
                    now=now,
                )
                uow.record(AgentStatusChanged(agent["id"], agent["status"], "OFFLINE"))
                agents += 1
                services += len(followed)
        if len(stale) < BATCH:
            break
    return agents, services


async def expire_registration_tokens(ctx: AppContext, now: datetime) -> int:
    async with ctx.writer() as uow:
        expired = await uow.tokens.expire_due(now)
        for token_id in expired:
            await write_audit(
                uow,
                Actor.system(),
                "registration_token.expired",
                target_type="RegistrationToken",
                target_id=token_id,
                now=now,
            )
            uow.record(RegistrationTokenChanged(token_id, "EXPIRED"))
    return len(expired)


async def delete_expired_sessions(ctx: AppContext, now: datetime) -> int:
    async with ctx.writer() as uow:
        n: int = await uow.sessions.delete_expired(now)
    return n


async def run_maintenance(ctx: AppContext, *, triggered_by: Actor | None = None) -> dict[str, Any]:
    """Run every maintenance step once with the current (runtime-adjustable) settings."""
    await maintenance_settings.load(ctx)  # another node may have changed them
    now = ctx.clock()
    offline_agents, offline_services = await mark_offline_agents(ctx, now)
    expired_tokens = await expire_registration_tokens(ctx, now)
    expired_commands = 0
    for _ in range(MAX_BATCHES):
        n = await expire_due_commands(ctx)
        expired_commands += n
        if n < BATCH:
            break
    expired_sessions = await delete_expired_sessions(ctx, now)
    deleted_audit = await prune_audit(ctx, ctx.settings.audit_retention_days, now=now)
    pruned_events = await prune_event_log(ctx, now)  # the live stream's durable log
    result: dict[str, Any] = {
        "expiredRegistrationTokens": expired_tokens,
        "expiredCommands": expired_commands,
        "offlineAgents": offline_agents,
        "offlineServices": offline_services,
        "deletedAuditEvents": deleted_audit,
        "expiredSessions": expired_sessions,
        "prunedDomainEvents": pruned_events,
        "ranAt": iso(now),
    }
    changed = any(v for k, v in result.items() if k not in HOUSEKEEPING)
    if triggered_by is not None or changed:
        async with ctx.writer() as uow:
            await write_audit(
                uow,
                triggered_by or Actor.system(),
                "maintenance.triggered" if triggered_by is not None else "maintenance.run",
                target_type="Workspace",
                target_id="maintenance",
                metadata=result,
                now=ctx.clock(),
            )
    return result
