"""Fixtures for the end-to-end tests of the Capsule Bus: a bus-enabled server per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, OwnerSessions, action
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess

from ..support.bus import World


@pytest.fixture(scope="module")
def bus_server(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Any
) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("bus")
    srv = InProcessServer(
        data_dir,
        database_factory(data_dir, migrated=True),
        {"OPSTAGE_CAPSULE_BUS_ENABLED": "true", "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN": "1000"},
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def ops(bus_server: ServerProcess, owner_sessions: OwnerSessions) -> Iterator[AdminClient]:
    client = owner_sessions.client(bus_server.url)
    yield client
    client.close()


@pytest.fixture
def world(bus_server: ServerProcess, ops: AdminClient) -> Iterator[World]:
    schema = {
        "type": "object",
        "properties": {"orderId": {"type": "string"}},
        "required": ["orderId"],
    }
    w = World(
        bus_server.url,
        ops,
        [
            action("ship", inputSchema=schema),
            action("refund", dangerLevel="HIGH"),
            action("note"),
        ],
    )
    yield w
    w.close()
