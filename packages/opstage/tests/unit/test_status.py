"""A service's status, as the reference derives it: the agent first, then its heartbeat's
freshness, then the age of the last health report, then the stored status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opstage.domain.status import (
    ServiceStatus,
    effective_service_status,
    heartbeat_is_stale,
    service_status_for_health,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _ago(seconds: int | None) -> datetime | None:
    return None if seconds is None else NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("agent", "heard", "stored", "health_age", "expected"),
    [
        # A live agent with a fresh heartbeat: the stored status.
        ("ONLINE", 5, "HEALTHY", 5, ServiceStatus.HEALTHY),
        ("ONLINE", 5, "UNHEALTHY", 5, ServiceStatus.UNHEALTHY),
        ("ONLINE", 5, "UNKNOWN", None, ServiceStatus.UNKNOWN),
        # The sweep stored STALE; the agent came back, no report yet.
        ("ONLINE", 5, "STALE", 500, ServiceStatus.STALE),
        # Registered, no heartbeat yet (the reference's PENDING case).
        ("PENDING", None, "HEALTHY", 5, ServiceStatus.STALE),
        ("ONLINE", None, "HEALTHY", 5, ServiceStatus.STALE),
        # Past the offline threshold, before the sweep: the agent reads ONLINE, this STALE.
        ("ONLINE", 91, "HEALTHY", 5, ServiceStatus.STALE),
        # The contract's health staleness.
        ("ONLINE", 5, "HEALTHY", 301, ServiceStatus.STALE),
        ("OFFLINE", 5, "HEALTHY", 5, ServiceStatus.OFFLINE),
        ("OFFLINE", 500, "STALE", 500, ServiceStatus.OFFLINE),
        ("DISABLED", 5, "HEALTHY", 5, ServiceStatus.OFFLINE),
        ("REVOKED", 5, "HEALTHY", 5, ServiceStatus.OFFLINE),
        (None, 5, "HEALTHY", 5, ServiceStatus.OFFLINE),
    ],
)
def test_service(
    agent: str | None,
    heard: int | None,
    stored: str,
    health_age: int | None,
    expected: ServiceStatus,
) -> None:
    got = effective_service_status(agent, _ago(heard), stored, _ago(health_age), NOW, 90, 300)
    assert got == expected


@pytest.mark.parametrize(
    ("health", "stored"),
    [
        ("UP", ServiceStatus.HEALTHY),
        ("DEGRADED", ServiceStatus.UNHEALTHY),
        ("DOWN", ServiceStatus.UNHEALTHY),
        ("UNKNOWN", ServiceStatus.UNKNOWN),
        (None, ServiceStatus.UNKNOWN),
        ("bogus", ServiceStatus.UNKNOWN),
    ],
)
def test_stored_status_of_a_health_report(health: str | None, stored: ServiceStatus) -> None:
    assert service_status_for_health(health) == stored


def test_heartbeat_staleness_is_strictly_past_the_threshold() -> None:
    assert heartbeat_is_stale(None, NOW, 90)
    assert not heartbeat_is_stale(_ago(90), NOW, 90)
    assert heartbeat_is_stale(_ago(91), NOW, 90)
