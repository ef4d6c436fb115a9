"""Status vocabularies (contracts/enums/status-enums.json and the OpenAPI) and derivation rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class AgentStatus(StrEnum):
    PENDING = "PENDING"
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    DISABLED = "DISABLED"
    REVOKED = "REVOKED"


class HealthStatus(StrEnum):
    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


class ServiceStatus(StrEnum):
    """Effective status of a Capsule Service as the OpenAPI names it."""

    UNKNOWN = "UNKNOWN"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    STALE = "STALE"
    OFFLINE = "OFFLINE"


class CommandStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


TERMINAL_COMMAND_STATUSES = frozenset(
    {CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED}
)
RETRYABLE_COMMAND_STATUSES = frozenset(
    {CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED}
)


class CommandType(StrEnum):
    ACTION_EXECUTE = "ACTION_EXECUTE"
    ACTION_PREPARE = "ACTION_PREPARE"


class TokenStatus(StrEnum):
    ACTIVE = "ACTIVE"
    USED = "USED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    VIEWER = "viewer"


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


class AgentMode(StrEnum):
    EMBEDDED = "embedded"
    SIDECAR = "sidecar"
    EXTERNAL = "external"
    OPHUB = "ophub"


HEALTH_TO_SERVICE_STATUS = {
    HealthStatus.UP: ServiceStatus.HEALTHY,
    HealthStatus.DEGRADED: ServiceStatus.UNHEALTHY,
    HealthStatus.DOWN: ServiceStatus.UNHEALTHY,
    HealthStatus.UNKNOWN: ServiceStatus.UNKNOWN,
}


def effective_agent_status(
    stored: str,
    last_heartbeat_at: datetime | None,
    created_at: datetime,
    now: datetime,
    offline_threshold_seconds: int,
) -> AgentStatus:
    """An agent silent past the threshold is OFFLINE now, before any sweep records it."""
    status = AgentStatus(stored)
    if status in (AgentStatus.ONLINE, AgentStatus.PENDING):
        seen = last_heartbeat_at or created_at
        if now - seen > timedelta(seconds=offline_threshold_seconds):
            return AgentStatus.OFFLINE
    return status


def effective_service_status(
    agent_status: AgentStatus | None,
    health_status: str,
    last_health_at: datetime | None,
    now: datetime,
    stale_threshold_seconds: int,
) -> ServiceStatus:
    """Derivation order of status-enums.json: the agent first, then freshness, then health."""
    if agent_status is None or agent_status in (
        AgentStatus.OFFLINE,
        AgentStatus.DISABLED,
        AgentStatus.REVOKED,
    ):
        return ServiceStatus.OFFLINE
    if last_health_at is not None and now - last_health_at > timedelta(
        seconds=stale_threshold_seconds
    ):
        return ServiceStatus.STALE
    return HEALTH_TO_SERVICE_STATUS.get(HealthStatus(health_status), ServiceStatus.UNKNOWN)
