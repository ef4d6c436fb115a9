"""One maintenance run: record what time alone changes, then prune what retention allows.

What it changes and audits is the reference server's sweep (``runMaintenance``), with the audit
actions of ``contracts/enums/audit-actions.json``, each targeting the workspace ``wks_default``
with ``{count}`` (plus the ids it moved) as metadata:

- Agents silent past ``agentOfflineThresholdSeconds`` are stored OFFLINE (``system.agent.offline``).
  Until then they read ONLINE and their services STALE.
- Services of OFFLINE agents are stored STALE with health UNKNOWN (``system.service.stale``);
  they read OFFLINE while the agent is, and STALE after it comes back until their next report.
- Pending or running commands past ``expiresAt`` become EXPIRED (``system.command.expired``).
- Active registration tokens past expiry become EXPIRED (counted, not audited one by one).
- Expired admin sessions are deleted.
- Audit older than ``auditRetentionDays`` is deleted in batches (0 keeps everything).
- Topic messages older than their topic's ``retention_ms`` are pruned (app/topic_retention.py).

Every step is its own short write transaction (batches of at most ``BATCH`` rows, one audit row
per batch in the same transaction), so a large backlog never holds the write lock for long. A
run that changed something is audited ``maintenance.run`` (SYSTEM); a run an admin asked for is
also audited ``maintenance.triggered`` with that admin as actor, whether or not it changed
anything.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from opstage.app import maintenance_settings
from opstage.app.audit import prune_audit, write_audit
from opstage.app.commands import expire_due_commands
from opstage.app.context import Actor, UnitContext
from opstage.app.event_log import prune_event_log
from opstage.app.ports import UnitOfWork
from opstage.app.topic_retention import prune_topics
from opstage.app.topics import TopicContext
from opstage.domain.events import (
    AgentStatusChanged,
    RegistrationTokenChanged,
    ServiceStatusChanged,
)
from opstage.domain.timeutil import iso
from opstage.domain.workspace import DEFAULT_WORKSPACE_ID

log = logging.getLogger("opstage.maintenance")

# Results that alone do not make a run worth an audit row (they happen on nearly every run).
HOUSEKEEPING = frozenset({"ranAt", "expiredSessions", "prunedDomainEvents"})
BATCH = 500
MAX_BATCHES = 1000  # a bound, not a target: 500k transitions in one run


class SweepContext(maintenance_settings.TunableContext, TopicContext, Protocol):
    """What a whole sweep uses (``AppContext`` is one; ADR 0010): the steps' units of work,
    the runtime overrides it reloads first, and the topic bus whose retention it applies."""


async def _workspace_audit(
    uow: UnitOfWork, action: str, metadata: dict[str, Any], now: datetime
) -> None:
    await write_audit(
        uow,
        Actor.system(),
        action,
        target_type="Workspace",
        target_id=DEFAULT_WORKSPACE_ID,
        metadata=metadata,
        now=now,
    )


async def mark_offline_agents(ctx: UnitContext, now: datetime) -> int:
    """Agents silent past the threshold → stored OFFLINE."""
    s = ctx.settings
    cutoff = now - timedelta(seconds=s.agent_offline_threshold_seconds)
    total = 0
    for _ in range(MAX_BATCHES):
        async with ctx.writer() as uow:
            stale = await uow.agents.stale_live(cutoff, BATCH)
            went: list[str] = []
            for agent in stale:
                if not await uow.agents.mark_offline_if_stale(agent["id"], cutoff, now):
                    continue  # a heartbeat got there first
                went.append(agent["id"])
                uow.record(AgentStatusChanged(agent["id"], agent["status"], "OFFLINE"))
            if went:
                await _workspace_audit(
                    uow,
                    "system.agent.offline",
                    {
                        "count": len(went),
                        "agentIds": went,
                        "thresholdSeconds": s.agent_offline_threshold_seconds,
                    },
                    now,
                )
            total += len(went)
        if len(stale) < BATCH:
            break
    return total


async def mark_stale_services(ctx: UnitContext, now: datetime) -> int:
    """Services of OFFLINE agents → stored STALE, health UNKNOWN."""
    total = 0
    for _ in range(MAX_BATCHES):
        async with ctx.writer() as uow:
            changed = await uow.services.mark_stale_of_offline_agents(now, BATCH)
            for svc in changed:
                uow.record(ServiceStatusChanged(svc["id"], svc["agent_id"], svc["status"], "STALE"))
            if changed:
                await _workspace_audit(
                    uow,
                    "system.service.stale",
                    {"count": len(changed), "serviceIds": [svc["id"] for svc in changed]},
                    now,
                )
        total += len(changed)
        if len(changed) < BATCH:
            break
    return total


async def expire_registration_tokens(ctx: UnitContext, now: datetime) -> int:
    async with ctx.writer() as uow:
        expired = await uow.tokens.expire_due(now)
        for token_id in expired:
            uow.record(RegistrationTokenChanged(token_id, "EXPIRED"))
    return len(expired)


async def delete_expired_sessions(ctx: UnitContext, now: datetime) -> int:
    async with ctx.writer() as uow:
        n: int = await uow.sessions.delete_expired(now)
    return n


async def run_maintenance(
    ctx: SweepContext, *, triggered_by: Actor | None = None
) -> dict[str, Any]:
    """Run every maintenance step once with the current (runtime-adjustable) settings."""
    await maintenance_settings.load(ctx)  # another node may have changed them
    now = ctx.clock()
    offline_agents = await mark_offline_agents(ctx, now)
    offline_services = await mark_stale_services(ctx, now)
    expired_tokens = await expire_registration_tokens(ctx, now)
    expired_commands = 0
    for _ in range(MAX_BATCHES):
        n = await expire_due_commands(ctx, BATCH)
        expired_commands += n
        if n < BATCH:
            break
    expired_sessions = await delete_expired_sessions(ctx, now)
    deleted_audit = await prune_audit(ctx, ctx.settings.audit_retention_days, now=now)
    pruned_events = await prune_event_log(ctx, now)  # the live stream's durable log
    # Topics' retention_ms: not in the answer, whose keys the compatibility tables pin.
    pruned_topic_messages = await prune_topics(ctx, now)
    if pruned_topic_messages:
        log.info("topic retention", extra={"prunedTopicMessages": pruned_topic_messages})
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
            if changed:  # as the reference: a run that changed something, however started
                await _workspace_audit(uow, "maintenance.run", result, ctx.clock())
            if triggered_by is not None:
                await write_audit(
                    uow,
                    triggered_by,
                    "maintenance.triggered",
                    target_type="Workspace",
                    target_id=DEFAULT_WORKSPACE_ID,
                    metadata=result,
                    now=ctx.clock(),
                )
    return result
