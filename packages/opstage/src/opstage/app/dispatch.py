"""What creating a command needs, shared by the command use cases and the Capsule Bus.

Here rather than in ``app/commands.py`` because the bus must not import the command use
cases, nor they the bus (ADR 0010: an import-linter independence contract).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from opstage.domain.errors import Conflict
from opstage.domain.events import CommandCreated
from opstage.domain.status import AgentStatus, CommandStatus, heartbeat_is_stale

# Spelled out, not built, so the error-mapping test sees every code (ADR 0006).
NOT_READY_CODES = {
    AgentStatus.OFFLINE: "AGENT_OFFLINE",
    AgentStatus.DISABLED: "AGENT_DISABLED",
    AgentStatus.REVOKED: "AGENT_REVOKED",
}


def check_agent_ready(agent: dict[str, Any] | None, now: datetime, threshold: int) -> None:
    if agent is None:
        raise Conflict("Agent not found for Capsule Service.", code="AGENT_NOT_FOUND")
    stored = agent["status"]
    if stored in NOT_READY_CODES:
        raise Conflict(
            f"Agent is {stored.lower()}; start or reconnect the agent before running actions.",
            code=NOT_READY_CODES[stored],
        )
    if agent["last_heartbeat_at"] is None:
        raise Conflict(
            "Agent has not sent a heartbeat yet; wait for it to connect before running actions.",
            code="AGENT_NOT_READY",
        )
    if heartbeat_is_stale(agent["last_heartbeat_at"], now, threshold):
        raise Conflict(
            "Agent heartbeat is stale; wait for the agent to reconnect before running actions.",
            code="AGENT_HEARTBEAT_STALE",
        )


def command_row(
    *,
    command_id: str,
    agent_id: str,
    service_id: str,
    type_: str,
    action: dict[str, Any],
    payload: dict[str, Any],
    confirmed: bool,
    user_id: str | None,
    retry_of: str | None,
    timeout: float,
    now: datetime,
    bus_event_id: str | None = None,
    bus_route_id: str | None = None,
) -> tuple[dict[str, Any], CommandCreated]:
    """A new PENDING command's row and its domain event."""
    row = {
        "bus_event_id": bus_event_id,
        "bus_route_id": bus_route_id,
        "id": command_id,
        "agent_id": agent_id,
        "service_id": service_id,
        "type": type_,
        "action_name": action["name"],
        "status": CommandStatus.PENDING,
        "payload": payload,
        "confirmed": confirmed,
        "created_by_user_id": user_id,
        "retry_of_command_id": retry_of,
        "error_code": None,
        "error_message": None,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "completed_at": None,
        "expires_at": now + timedelta(seconds=timeout),
    }
    return row, CommandCreated(command_id, agent_id, service_id, type_, action["name"])
