"""Effective status: the agent first, then freshness, then reported health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opstage.domain.status import (
    AgentStatus,
    ServiceStatus,
    effective_agent_status,
    effective_service_status,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stored", "silent_for", "expected"),
    [
        ("ONLINE", 10, AgentStatus.ONLINE),
        ("ONLINE", 91, AgentStatus.OFFLINE),
        ("PENDING", 91, AgentStatus.OFFLINE),
        ("DISABLED", 1000, AgentStatus.DISABLED),
        ("REVOKED", 1000, AgentStatus.REVOKED),
    ],
)
def test_agent(stored: str, silent_for: int, expected: AgentStatus) -> None:
    seen = NOW - timedelta(seconds=silent_for)
    assert effective_agent_status(stored, seen, seen, NOW, 90) == expected


@pytest.mark.parametrize(
    ("agent", "health", "age", "expected"),
    [
        (AgentStatus.ONLINE, "UP", 5, ServiceStatus.HEALTHY),
        (AgentStatus.ONLINE, "DEGRADED", 5, ServiceStatus.UNHEALTHY),
        (AgentStatus.ONLINE, "DOWN", 5, ServiceStatus.UNHEALTHY),
        (AgentStatus.ONLINE, "UP", 500, ServiceStatus.STALE),
        (AgentStatus.OFFLINE, "UP", 5, ServiceStatus.OFFLINE),
        (AgentStatus.DISABLED, "UP", 5, ServiceStatus.OFFLINE),
        (AgentStatus.REVOKED, "UP", 5, ServiceStatus.OFFLINE),
        (None, "UP", 5, ServiceStatus.OFFLINE),
    ],
)
def test_service(agent: AgentStatus | None, health: str, age: int, expected: ServiceStatus) -> None:
    reported = NOW - timedelta(seconds=age)
    assert effective_service_status(agent, health, reported, NOW, 300) == expected
