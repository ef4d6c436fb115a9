"""Fixtures: real Opstage servers (long-poll on, and long-poll off) and an operator for each.

``OPSTAGE_TEST_ENGINE=postgres`` runs these tests with each server on a PostgreSQL database of
its own, like the server's suite (``make pytest-postgres``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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

__all__ = ["database_factory", "pg_admin_dsn"]  # fixtures, shared with the server's suite


@dataclass
class Servers:
    """The suite's servers, started together: each takes seconds, mostly waiting."""

    standard: ServerProcess  # as shipped: long-poll advertised
    # No long-poll, like the reference Opstage CE; its Capsule Bus is switched on (one server
    # for both saves a start, and neither setting touches what the other tests look at).
    polling: ServerProcess
    restartable: StablePortServer  # restarted by a test, on the same port with the same data


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, database_factory: DatabaseFactory
) -> Iterator[Servers]:
    def make(cls: type[ServerProcess], **env: str) -> ServerProcess:
        data_dir = tmp_path_factory.mktemp("opstage")
        return cls(data_dir, database_factory(data_dir, migrated=True), {**QUIET_SERVER, **env})

    group = Servers(
        make(ServerProcess),
        make(
            ServerProcess,
            OPSTAGE_LONG_POLL_ENABLED="false",
            OPSTAGE_CAPSULE_BUS_ENABLED="true",
        ),
        make(StablePortServer),
    )
    every = [group.standard, group.polling, group.restartable]
    with ThreadPoolExecutor(len(every)) as pool:
        started = [pool.submit(srv.start) for srv in every]
    try:
        for future in started:
            future.result()
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
def restartable_server(servers: Servers) -> StablePortServer:
    return servers.restartable


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
