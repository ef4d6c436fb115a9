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


def service_status_for_health(health_status: str | None) -> ServiceStatus:
    """The stored status a health report gives a service (the reference's mapping)."""
    try:
        return HEALTH_TO_SERVICE_STATUS[HealthStatus(health_status or "UNKNOWN")]
    except ValueError:
        return ServiceStatus.UNKNOWN


def heartbeat_is_stale(
    last_heartbeat_at: datetime | None, now: datetime, offline_threshold_seconds: int
) -> bool:
    """No heartbeat yet, or none within the offline threshold."""
    return last_heartbeat_at is None or now - last_heartbeat_at > timedelta(
        seconds=offline_threshold_seconds
    )


def effective_service_status(
    agent_status: str | None,
    agent_last_heartbeat_at: datetime | None,
    stored_status: str,
    last_health_at: datetime | None,
    now: datetime,
    offline_threshold_seconds: int,
    stale_threshold_seconds: int,
) -> ServiceStatus:
    """What a service reads, as the reference derives it (``deriveEffectiveStatus``).

    1. Its agent is gone, DISABLED, REVOKED or stored OFFLINE: OFFLINE.
    2. Its agent has not sent a heartbeat yet, or none within the offline threshold: STALE
       (the agent itself reads ONLINE until the sweep stores OFFLINE).
    3. Its last health report is older than the health-stale threshold: STALE (the contract's
       ``derivationOrder``).
    4. Otherwise its stored status: HEALTHY, UNHEALTHY or UNKNOWN from its last report, or
       STALE as the sweep left it until the next report.
    """
    if agent_status is None or agent_status in (
        AgentStatus.OFFLINE,
        AgentStatus.DISABLED,
        AgentStatus.REVOKED,
    ):
        return ServiceStatus.OFFLINE
    if heartbeat_is_stale(agent_last_heartbeat_at, now, offline_threshold_seconds):
        return ServiceStatus.STALE
    if last_health_at is not None and now - last_health_at > timedelta(
        seconds=stale_threshold_seconds
    ):
        return ServiceStatus.STALE
    try:
        return ServiceStatus(stored_status)
    except ValueError:
        return ServiceStatus.UNKNOWN
