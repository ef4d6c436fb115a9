"""Fixtures: real Opstage servers (long-poll on, and long-poll off) and an operator for each.

The two shared servers run in this process (``InProcessServer``: uvicorn on a real port, from a
thread); the one a test restarts with kill -9 is a process (ADR 0013).

``OPSTAGE_TEST_ENGINE=postgres`` runs these tests with each server on a PostgreSQL database of
its own, like the server's suite (``make pytest-postgres``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from agent_harness import (
    QUIET_SERVER,
    Operator,
    ServerProcess,
    StablePortServer,
    stop_server,
)
from opstage_testing.fixtures import DatabaseFactory, database_factory, pg_admin_dsn
from opstage_testing.inprocess import InProcessServer

__all__ = ["database_factory", "pg_admin_dsn"]  # fixtures, shared with the server's suite


@dataclass
class Servers:
    """The suite's shared servers, in this process (ADR 0013): a start is an app, not an
    interpreter with the server's imports."""

    standard: InProcessServer  # as shipped: long-poll advertised
    # No long-poll, like the reference Opstage CE; its Capsule Bus is switched on (one server
    # for both saves a start, and neither setting touches what the other tests look at).
    polling: InProcessServer


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, database_factory: DatabaseFactory
) -> Iterator[Servers]:
    def make(**env: str) -> InProcessServer:
        data_dir = tmp_path_factory.mktemp("opstage")
        database = database_factory(data_dir, migrated=True)
        return InProcessServer(data_dir, database, {**QUIET_SERVER, **env})

    group = Servers(
        make(), make(OPSTAGE_LONG_POLL_ENABLED="false", OPSTAGE_CAPSULE_BUS_ENABLED="true")
    )
    every = [group.standard, group.polling]
    try:
        for srv in every:
            srv.start()
        yield group
    finally:
        for srv in every:
            stop_server(srv)


@pytest.fixture(scope="session")
def server(servers: Servers) -> ServerProcess:
    return servers.standard


@pytest.fixture(scope="session")
def polling_server(servers: Servers) -> ServerProcess:
    return servers.polling


@pytest.fixture(scope="session")
def restartable_server(
    tmp_path_factory: pytest.TempPathFactory, database_factory: DatabaseFactory
) -> Iterator[StablePortServer]:
    """Restarted by a test, on the same port with the same data: a process, since the harshest
    restart is kill -9. Started only in the workers whose tests ask for it."""
    data_dir = tmp_path_factory.mktemp("opstage-restartable")
    srv = StablePortServer(data_dir, database_factory(data_dir, migrated=True), dict(QUIET_SERVER))
    try:
        yield srv.start()
    finally:
        stop_server(srv)


@pytest.fixture(scope="session")
def operator(server: ServerProcess) -> Iterator[Operator]:
    op = Operator(server)
    yield op
    op.close()


@pytest.fixture(scope="session")
def polling_operator(polling_server: ServerProcess) -> Iterator[Operator]:
    op = Operator(polling_server)
    yield op
    op.close()
