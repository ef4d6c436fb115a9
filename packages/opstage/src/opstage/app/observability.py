"""What the dashboard, the metrics endpoints and the diagnostics page report.

Counts by status are the statuses the lists show: an agent's stored status (ONLINE until the
sweep stores OFFLINE, as the reference), a service's effective one (STALE in between). Command
durations and error codes cover the commands created in the last :data:`WINDOW_HOURS` hours
(``topCommandErrors``, the reference's list, covers every failed command). Operational counters
are derived from the audit trail (durable, within audit retention) or kept in memory since
start, as the contract's ``OperationalMetrics`` describes each.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from opstage import __version__
from opstage.app.context import (
    BusIngest,
    MaintenanceState,
    OperationalCounters,
    UnitContext,
)
from opstage.app.event_log import FollowContext, log_bounds
from opstage.app.heartbeats import HeartbeatWriter
from opstage.app.pauses import PauseStats
from opstage.app.ports import LeaderLock
from opstage.app.topics import TopicContext
from opstage.app.waiters import Waiters
from opstage.domain.records import DatabaseInfo
from opstage.domain.timeutil import iso
from opstage.domain.workspace import default_workspace

WINDOW_HOURS = 24
DURATION_SAMPLE = 1000
TOP_ERROR_CODES = 10
TOP_COMMAND_ERRORS = 5  # the reference's list: all-time, FAILED commands only
STALE_AGENTS_SHOWN = 20
RECENT_ROWS = 10
AUDIT_DERIVED = {
    "commandsDispatched": "command.dispatched",
    "commandsCompleted": "command.completed",
    "commandsFailed": "command.failed",
    "actionPrepareRequested": "service.action.prepare_requested",
}


class MetricsContext(UnitContext, Protocol):
    """What the admin metrics read beyond units of work (``AppContext`` is one; ADR 0010):
    the in-process counters."""

    counters: OperationalCounters


class RuntimeContext(MetricsContext, FollowContext, TopicContext, Protocol):
    """What the runtime diagnostics and the Prometheus scrape report of this process
    (``AppContext`` is one; ADR 0010): nearly all of it, since reporting it is their job."""

    started_at: datetime
    heartbeats: HeartbeatWriter
    waiters: Waiters
    bus_ingest: BusIngest | None
    leader_lock: LeaderLock
    maintenance: MaintenanceState
    pauses: PauseStats

    def cross_node_wake(self) -> dict[str, Any] | None: ...


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of an ascending sequence (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _durations(timings: Sequence[tuple[str, Any, Any]]) -> dict[str, Any]:
    def summary(ms: list[int]) -> dict[str, Any]:
        ms.sort()
        return {
            "count": len(ms),
            # The reference's names for the sample's size and its mean (rounded half up).
            "sampleSize": len(ms),
            "p50Ms": percentile(ms, 50),
            "p95Ms": percentile(ms, 95),
            "maxMs": ms[-1] if ms else None,
            "meanMs": math.floor(sum(ms) / len(ms) + 0.5) if ms else None,
        }

    by_type: dict[str, list[int]] = {}
    every: list[int] = []
    for type_, started, completed in timings:
        ms = max(0, round((completed - started).total_seconds() * 1000))
        every.append(ms)
        by_type.setdefault(type_, []).append(ms)
    return {
        "windowHours": WINDOW_HOURS,
        "sampleLimit": DURATION_SAMPLE,
        **summary(every),
        "byType": {t: summary(v) for t, v in sorted(by_type.items())},
    }


async def dashboard_summary(ctx: UnitContext) -> dict[str, Any]:
    s = ctx.settings
    now = ctx.clock()
    async with ctx.reader() as uow:
        agent_counts = await uow.agents.counts_by_status()
        service_counts = await uow.services.counts_by_status(
            now, s.agent_offline_threshold_seconds, s.health_stale_threshold_seconds
        )
        command_counts = await uow.commands.counts_by_status()
        audit_count = (await uow.observability.counts())["auditEvents"]
        recent_commands = await uow.commands.recent(RECENT_ROWS)
        recent_audit, _ = await uow.audit.list(
            actor_types=(),
            results=(),
            actions=(),
            target_type=None,
            target_id=None,
            since=None,
            until=None,
            sort=(("createdAt", True),),
            page=1,
            page_size=RECENT_ROWS,
        )
    return {
        "workspace": default_workspace(),
        "agentCounts": agent_counts,
        "serviceCounts": service_counts,
        "commandCounts": command_counts,
        "auditEventCount": audit_count,
        "recentCommands": recent_commands,
        "recentAuditEvents": recent_audit,
        "generatedAt": iso(now),
    }


async def admin_metrics(ctx: MetricsContext) -> dict[str, Any]:
    s = ctx.settings
    now = ctx.clock()
    since = now - timedelta(hours=WINDOW_HOURS)
    cutoff = now - timedelta(seconds=s.agent_offline_threshold_seconds)
    async with ctx.reader() as uow:
        o = uow.observability
        agents = await uow.agents.counts_by_status()
        services = await uow.services.counts_by_status(
            now, s.agent_offline_threshold_seconds, s.health_stale_threshold_seconds
        )
        tokens = await o.token_counts_by_status(now)
        by_type_status = await o.command_counts_by_type_status()
        counts = await o.counts()
        audit_counts = await o.audit_action_counts(list(AUDIT_DERIVED.values()))
        prepare_timeouts = await o.command_error_count("ACTION_PREPARE_TIMEOUT")
        timings = await o.finished_command_timings(since, DURATION_SAMPLE)
        error_codes = await o.top_error_codes(since, TOP_ERROR_CODES)
        command_errors = await o.top_error_codes(None, TOP_COMMAND_ERRORS, status="FAILED")
        stale_online = await o.stale_online_agents(cutoff)
        stale, stale_total = await o.stale_agents(cutoff, STALE_AGENTS_SHOWN)
    commands: dict[str, int] = {}
    for (_type, status), n in by_type_status.items():
        commands[status] = commands.get(status, 0) + n
    operational = {key: audit_counts.get(action, 0) for key, action in AUDIT_DERIVED.items()}
    operational.update(
        {
            "agentCommandPolls": ctx.counters.agent_command_polls,
            "actionPrepareTimeouts": prepare_timeouts,
            "actionPrepareFailures": by_type_status.get(("ACTION_PREPARE", "FAILED"), 0),
            "oversizedCommandResultsRejected": ctx.counters.oversized_results_rejected,
            "staleOnlineAgents": stale_online,
        }
    )
    return {
        "workspace": default_workspace(),
        "totals": {
            "users": counts["users"],
            "agents": sum(agents.values()),
            "capsuleServices": sum(services.values()),
            "registrationTokens": sum(tokens.values()),
            "commands": sum(commands.values()),
            "auditEvents": counts["auditEvents"],
            "busRoutes": counts["busRoutes"],
            "busEvents": counts["busEvents"],
        },
        "byStatus": {
            "agents": agents,
            "capsuleServices": services,
            "registrationTokens": tokens,
            "commands": commands,
        },
        "operational": operational,
        "commandDurations": _durations(timings),
        "topCommandErrors": [{"code": code, "count": n} for code, n in command_errors],
        "topErrorCodes": {
            "windowHours": WINDOW_HOURS,
            "items": [{"code": code, "count": n} for code, n in error_codes],
        },
        "staleAgents": {
            "thresholdSeconds": s.agent_offline_threshold_seconds,
            "count": stale_total,
            "items": [
                {
                    "id": a["id"],
                    "code": a["code"],
                    "name": a["name"],
                    "status": a["status"],
                    "lastHeartbeatAt": iso(a["last_heartbeat_at"]),
                    "silentSeconds": int(
                        (now - (a["last_heartbeat_at"] or a["created_at"])).total_seconds()
                    ),
                }
                for a in stale
            ],
        },
        "generatedAt": iso(now),
    }


def _memory() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["maxRssBytes"] = peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):  # pragma: no cover - not on POSIX
        pass
    try:
        with open("/proc/self/statm") as f:
            out["rssBytes"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            # The reference's name for the same figure (Node's process.memoryUsage().rss), which
            # the CE console shows.
            out["rss"] = out["rssBytes"]
    except (OSError, ValueError, IndexError):
        pass
    return out


async def runtime_diagnostics(ctx: RuntimeContext) -> dict[str, Any]:
    s = ctx.settings
    now = ctx.clock()
    async with ctx.reader() as uow:
        database = await uow.observability.database_info()
    bus = ctx.bus
    return {
        "version": s.version_override or __version__,
        "edition": "ce",
        "python": platform.python_version(),
        "platform": sys.platform,
        "arch": platform.machine(),
        "pid": os.getpid(),
        "startedAt": iso(ctx.started_at),
        "uptimeSeconds": int((now - ctx.started_at).total_seconds()),
        "memory": _memory(),
        "database": _database_view(database),
        "eventBus": {
            "capacity": bus.capacity,
            "subscribers": bus.subscriber_count,
            "maxLag": bus.max_lag(),
            "publishedTotal": bus.published_total,
            "droppedTotal": bus.dropped_total,
        },
        "eventLog": {
            **await log_bounds(ctx),
            "retentionHours": s.event_log_retention_hours,
        },
        "heartbeats": {"batches": ctx.heartbeats.batches, "contacts": ctx.heartbeats.contacts},
        "busIngest": _bus_ingest(ctx),
        "waiters": {
            "waiting": ctx.waiters.waiting,
            "lagWakeups": ctx.waiters.lag_wakeups,
            "crossNode": ctx.cross_node_wake(),
        },
        "pauses": ctx.pauses.view(),
        "maintenance": {
            # PostgreSQL: one elected node runs the scheduled sweeps (ADR 0007).
            "election": ctx.leader_lock.election,
            "leader": ctx.maintenance.leader,
            "sweeps": ctx.maintenance.sweeps,
            "lastSweepAt": iso(ctx.maintenance.last_sweep_at),
        },
        "config": s.masked(),
        "generatedAt": iso(now),
    }


def _bus_ingest(ctx: RuntimeContext) -> dict[str, int]:
    writer = ctx.bus_ingest
    if writer is None:
        return {"batches": 0, "events": 0, "fallbacks": 0}
    return {"batches": writer.batches, "events": writer.events, "fallbacks": writer.fallbacks}


@dataclass
class PrometheusSnapshot:
    """What a scrape reports from the database and the process, gathered in one read."""

    agents: dict[str, int] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)
    commands: dict[tuple[str, str], int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    bus_events: dict[str, int] = field(default_factory=dict)
    bus_published: int = 0
    bus_dropped: int = 0
    bus_max_lag: int = 0
    bus_subscribers: int = 0
    event_log_last_id: int = 0
    agent_command_polls: int = 0
    oversized_results_rejected: int = 0
    action_prepare_timeouts: int = 0
    heartbeat_batches: int = 0
    heartbeat_contacts: int = 0
    bus_ingest_batches: int = 0
    bus_ingest_events: int = 0
    bus_ingest_fallbacks: int = 0
    uptime_seconds: float = 0.0
    pauses: PauseStats = field(default_factory=PauseStats)
    # Durable topic subscriptions' lag: (topic, subscription, partition) → messages (ADR 0015).
    topic_lag: dict[tuple[str, str, int], int] = field(default_factory=dict)


async def prometheus_snapshot(ctx: RuntimeContext) -> PrometheusSnapshot:
    s = ctx.settings
    now = ctx.clock()
    async with ctx.reader() as uow:
        o = uow.observability
        snap = PrometheusSnapshot(
            agents=await uow.agents.counts_by_status(),
            services=await uow.services.counts_by_status(
                now, s.agent_offline_threshold_seconds, s.health_stale_threshold_seconds
            ),
            commands=await o.command_counts_by_type_status(),
            tokens=await o.token_counts_by_status(now),
            bus_events=await o.bus_event_counts(),
        )
        _, newest, pruned = await uow.event_log.bounds()
    bus = ctx.bus
    snap.bus_published = bus.published_total
    snap.bus_dropped = bus.dropped_total
    snap.bus_max_lag = bus.max_lag()
    snap.bus_subscribers = bus.subscriber_count
    snap.event_log_last_id = max(newest or 0, pruned)
    snap.agent_command_polls = ctx.counters.agent_command_polls
    snap.oversized_results_rejected = ctx.counters.oversized_results_rejected
    snap.action_prepare_timeouts = ctx.counters.action_prepare_timeouts
    snap.heartbeat_batches = ctx.heartbeats.batches
    snap.heartbeat_contacts = ctx.heartbeats.contacts
    ingest = _bus_ingest(ctx)
    snap.bus_ingest_batches = ingest["batches"]
    snap.bus_ingest_events = ingest["events"]
    snap.bus_ingest_fallbacks = ingest["fallbacks"]
    snap.uptime_seconds = (now - ctx.started_at).total_seconds()
    snap.pauses = ctx.pauses
    if ctx.topics is not None:
        from opstage.app.topic_subscriptions import subscription_lags

        for state in await subscription_lags(ctx):
            sub = state.subscription
            for p in state.partitions:
                snap.topic_lag[(sub.topic, sub.name, p.partition)] = p.lag
    return snap


def _database_view(info: DatabaseInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": info["kind"],
        "serverVersion": info["server_version"],
        "sizeBytes": info["size_bytes"],
    }
    if "wal_size_bytes" in info:
        out["walSizeBytes"] = info["wal_size_bytes"]
    return out
