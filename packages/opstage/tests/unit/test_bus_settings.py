"""The Capsule Bus settings: what a server gets when nothing is set, and the variable names."""

from __future__ import annotations

import pytest
from opstage.settings import Settings

BUS_VARIABLES = (
    "OPSTAGE_CAPSULE_BUS_ENABLED",
    "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN",
    "OPSTAGE_CAPSULE_BUS_MAX_DEPTH",
    "OPSTAGE_CAPSULE_BUS_IDEMPOTENCY_HOURS",
    "OPSTAGE_CAPSULE_BUS_OUTCOME_EVENTS",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BUS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_bus_defaults() -> None:
    s = Settings()
    assert s.capsule_bus_enabled is False
    assert s.capsule_bus_ingest_per_min == 60
    assert s.capsule_bus_max_depth == 1
    assert s.capsule_bus_idempotency_hours == 24
    assert s.capsule_bus_outcome_events is False


def test_bus_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(BUS_VARIABLES, ("true", "7", "3", "2", "true"), strict=True):
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.capsule_bus_enabled is True
    assert s.capsule_bus_ingest_per_min == 7
    assert s.capsule_bus_max_depth == 3
    assert s.capsule_bus_idempotency_hours == 2
    assert s.capsule_bus_outcome_events is True
