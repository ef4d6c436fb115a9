"""The Kafka topic engine (``OPSTAGE_TOPIC_BUS_ENGINE=kafka``; needs ``aiokafka``), ADR 0014.

- A topic is the Kafka topic of its wire name (``{namespace}.{tenant}.{name}``, at most 242 of
  Kafka's 249 characters) with the topic's partitions, replication and ``retention.ms``.
- ``publish`` sends to the partition Opstage chose (CRC-32 of the key, as on every engine) with
  ``acks=all`` and returns the broker's partition, offset and timestamp. Sends to one partition
  are appended in call order, so concurrent publishes get offsets in submission order.
- No topic is ever created by a publish or a read: aiokafka asks for metadata with
  ``allow_auto_topic_creation=true``, which a broker with auto-creation on (Kafka's default,
  Tansu) answers by creating the topic; Opstage asks with ``false`` (``_no_auto_create``).
- ``Idempotency-Key``: Kafka's idempotent producer only dedupes the producer's own retries,
  so a key's first receipt is kept in this process for ``DUPLICATE_WINDOW_SECONDS`` (as
  JetStream's duplicate window): a repeat within it on this node answers the first receipt.
- Consumer groups as on the embedded and NATS engines (``pubsub/groups.py``): coordinated in
  this process, each partition read from the group's own position by fetch requests the
  broker answers at once. Ephemeral subscriptions commit no offsets (durable ones keep theirs in
  Opstage's database, ADR 0015), so a Kafka group's rebalance would start a new member at
  ``latest`` and skip what was published during it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from opstage.app.topic_ports import EngineTopicExists, EngineTopicMissing, TopicEngineError
from opstage.domain.timeutil import utcnow
from opstage.domain.topics import (
    Delivered,
    OutgoingMessage,
    PartitionOffsets,
    Receipt,
    ResumePoint,
    StartFrom,
    Topic,
)
from opstage.pubsub.groups import PartitionedLogGroups

DUPLICATE_WINDOW_SECONDS = 120.0
TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_OUT_OF_RANGE = 1
FETCH_MAX_BYTES = 1 << 20
# A fetch's max_wait when it must be answered at once: 1 ms, not 0, since Tansu answers a 0 ms
# fetch before it has read anything (see ``_fetch`` for its longer reads).
AT_ONCE_MS = 1
# How stale a publish's knowledge that its topic exists may be (see ``_send``).
VERIFY_SECONDS = 1.0


def _no_auto_create() -> None:
    """Every metadata request aiokafka sends from here on asks the broker not to create the
    topics it names (see the module docstring): aiokafka has no setting for it."""
    import aiokafka.client
    from aiokafka.protocol.metadata import MetadataRequest

    if getattr(aiokafka.client.MetadataRequest, "opstage_no_auto_create", False):
        return

    class NoAutoCreateMetadataRequest(MetadataRequest):  # type: ignore[misc]
        opstage_no_auto_create = True

        def __init__(
            self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None
        ) -> None:
            super().__init__(topics, False)

    aiokafka.client.MetadataRequest = NoAutoCreateMetadataRequest


class _OutOfRange(Exception):
    """A fetch asked for an offset the partition no longer (or not yet) holds."""


def _millis(moment: int | None) -> datetime:
    if moment is None or moment < 0:
        return utcnow()
    return datetime.fromtimestamp(moment / 1000, tz=UTC)


class KafkaTopicEngine(PartitionedLogGroups):
    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "opstage",
        poll_seconds: float = 1.0,
        request_timeout_ms: int = 10_000,
    ) -> None:
        super().__init__(poll_seconds=poll_seconds)
        _no_auto_create()
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._timeout_ms = request_timeout_ms
        # Half the request timeout: the client gives up on the fetch only after the broker has.
        self._read_wait_ms = max(AT_ONCE_MS, request_timeout_ms // 2)
        self._producer: Any = None
        self._admin: Any = None
        self._lock = asyncio.Lock()
        self._known: dict[str, int] = {}  # wire → partitions, of topics seen to exist
        self._verified: dict[str, float] = {}  # wire → when it was last seen to exist
        self._append: dict[tuple[str, int], asyncio.Lock] = {}
        self._receipts: dict[str, tuple[float, asyncio.Future[Receipt]]] = {}
        self._checks: dict[str, asyncio.Future[bool]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        # One consumer, without a group or an assignment, asks for the partitions' first
        # offsets (``ListOffsets``) for every subscribe and lag reading.
        self._probe: Any = None
        self._probe_lock = asyncio.Lock()

    # --- clients --------------------------------------------------------------------------

    def _common(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self._bootstrap,
            "client_id": self._client_id,
            "request_timeout_ms": self._timeout_ms,
        }

    async def _clients(self) -> tuple[Any, Any]:
        if self._producer is not None:
            return self._producer, self._admin
        async with self._lock:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer
                from aiokafka.admin import AIOKafkaAdminClient

                producer = AIOKafkaProducer(**self._common(), acks="all", linger_ms=0)
                admin = AIOKafkaAdminClient(**self._common())
                try:
                    await producer.start()
                    await admin.start()
                except Exception as exc:
                    await producer.stop()
                    await admin.close()
                    raise TopicEngineError(f"cannot reach Kafka: {exc}") from exc
                self._producer, self._admin = producer, admin
        return self._producer, self._admin

    async def _new_consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            **self._common(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
        except Exception as exc:
            await consumer.stop()
            raise TopicEngineError(f"cannot reach Kafka: {exc}") from exc
        return consumer

    async def close(self) -> None:
        for wire in list(self._signals):
            self._wake(wire)
        producer, admin, probe = self._producer, self._admin, self._probe
        self._producer = self._admin = self._probe = None
        if probe is not None:
            await probe.stop()
        if producer is not None:
            await producer.stop()
        if admin is not None:
            await admin.close()

    # --- topics ---------------------------------------------------------------------------

    async def _partitions(self, wire: str) -> int:
        """The topic's partition count, 0 when the brokers do not have it (never creates it)."""
        from aiokafka.protocol.metadata import MetadataRequest

        producer, _ = await self._clients()
        client = producer.client
        try:
            node = client.get_random_node()
            response = await client.send(node, MetadataRequest([wire], False))
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        for error_code, name, *_rest in response.topics:
            if name == wire and error_code == 0:
                count = len(_rest[-1])
                self._known[wire] = count
                self._verified[wire] = time.monotonic()
                return count
        self._known.pop(wire, None)
        self._verified.pop(wire, None)
        return 0

    async def create_topic(self, topic: Topic) -> None:
        from aiokafka.admin import NewTopic

        _, admin = await self._clients()
        configs = {"retention.ms": str(topic.retention_ms)} if topic.retention_ms else {}
        try:
            response = await admin.create_topics(
                [NewTopic(topic.wire, topic.partitions, topic.replication, topic_configs=configs)]
            )
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        for _name, code, message in response.topic_errors:
            if code == TOPIC_ALREADY_EXISTS:
                raise EngineTopicExists(topic.wire)
            if code:
                raise TopicEngineError(f"Kafka refused the topic: {code} {message}")
        self._known[topic.wire] = topic.partitions
        self._verified[topic.wire] = time.monotonic()

    async def delete_topic(self, wire: str) -> None:
        _, admin = await self._clients()
        try:
            response = await admin.delete_topics([wire])
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        self._known.pop(wire, None)
        self._verified.pop(wire, None)
        for _name, code in response.topic_error_codes:
            if code == UNKNOWN_TOPIC_OR_PARTITION:
                raise EngineTopicMissing(wire)
            if code:
                raise TopicEngineError(f"Kafka did not delete the topic: error {code}")
        self._topic_deleted(wire)

    async def topic_exists(self, wire: str) -> bool:
        return bool(await self._partitions(wire))

    # --- publish --------------------------------------------------------------------------

    async def publish(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        key = message.idempotency_key
        if key is None:
            return await self._send(wire, partition, message)
        now = time.monotonic()
        seen = self._receipts.get(key)
        if seen is not None and seen[0] > now:
            first = await asyncio.shield(seen[1])
            return Receipt(first.topic, first.partition, first.offset, first.produced_at, True)
        pending: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._receipts[key] = (now + DUPLICATE_WINDOW_SECONDS, pending)
        try:
            receipt = await self._send(wire, partition, message)
        except BaseException as exc:
            # A failed first attempt is not a receipt: its twins and later retries try again.
            self._receipts.pop(key, None)
            pending.set_exception(exc)
            pending.exception()  # retrieved: twins re-raise it themselves
            raise
        pending.set_result(receipt)
        self._forget_old_receipts(now)
        return receipt

    def _forget_old_receipts(self, now: float) -> None:
        while self._receipts:
            oldest = next(iter(self._receipts))
            expires, future = self._receipts[oldest]
            if expires > now or not future.done():
                return
            del self._receipts[oldest]

    async def _send(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        producer, _ = await self._clients()
        if wire not in self._known and not await self._partitions(wire):
            raise EngineTopicMissing(wire)
        # Tansu stores writes to a topic deleted through another node as if it still existed
        # (Kafka refuses them): the topic is seen again at least every VERIFY_SECONDS, so such
        # a delete is refused here within that bound, for one metadata request per second.
        stale = time.monotonic() - self._verified.get(wire, 0.0) > VERIFY_SECONDS
        # Shielded: the check is shared, and a cancelled publisher must not cancel it for the
        # others awaiting it.
        if stale and not await asyncio.shield(self._confirm(wire)):
            raise EngineTopicMissing(wire)
        value = orjson.dumps(message.payload)
        headers = [(k, v.encode()) for k, v in message.headers.items()]
        key = message.key.encode() if message.key is not None else None
        lock = self._append.get((wire, partition))
        if lock is None:
            lock = self._append[(wire, partition)] = asyncio.Lock()
        try:
            # ``send`` appends to the partition's batch and returns the delivery's future: one
            # appender at a time keeps a partition's offsets in call order.
            async with lock:
                delivery = await producer.send(
                    wire, value, key=key, partition=partition, headers=headers
                )
            meta = await delivery
        except Exception as exc:
            if not await self._partitions(wire):
                raise EngineTopicMissing(wire) from exc
            raise TopicEngineError(str(exc)) from exc
        self._wake(wire)
        return Receipt(wire, int(meta.partition), int(meta.offset), _millis(meta.timestamp))

    def _confirm(self, wire: str) -> asyncio.Future[bool]:
        """Whether ``wire`` exists, by a metadata request sent after this call: one request
        answers every publish that asked before it went out."""
        check = self._checks.get(wire)
        if check is None:
            check = self._checks[wire] = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._check(wire, check))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)
        return check

    async def _check(self, wire: str, check: asyncio.Future[bool]) -> None:
        if self._checks.get(wire) is check:
            del self._checks[wire]  # later acknowledgements wait for the next request
        try:
            check.set_result(bool(await self._partitions(wire)))
        except BaseException as exc:
            check.set_exception(exc)
            check.exception()

    # --- read (pubsub/groups.py) ----------------------------------------------------------

    async def _fetch(
        self, wire: str, partition: int, start: int, *, records: bool = True
    ) -> tuple[list[Any], int]:
        """``partition``'s records from ``start`` and its high watermark, by a fetch the broker
        answers at once. No long poll: a publish on this node wakes the readers and the rest is
        polled (pubsub/groups.py); a consumer would long-poll in the background from a position
        of its own, where the groups keep one per group.

        An answer without records whose high watermark is past ``start`` is asked again with
        time to read them (``records=False``: only the watermark is wanted). Tansu spends a
        fetch's ``max_wait`` on listing the partition's batches as well: a 1 ms fetch past a few
        thousand batches comes back empty before the listing reaches ``start``, every time, and
        the subscriber waited forever (bench/README.md, "Topic bus"). Kafka answers a fetch
        with records at once, so the second one waits on neither broker longer than reading
        them takes; its wait only bounds Tansu's listing."""
        out, highwater = await self._fetch_once(wire, partition, start, AT_ONCE_MS)
        if records and not out and highwater > start:
            out, highwater = await self._fetch_once(wire, partition, start, self._read_wait_ms)
        return out, highwater

    async def _fetch_once(
        self, wire: str, partition: int, start: int, max_wait_ms: int
    ) -> tuple[list[Any], int]:
        from aiokafka.protocol.fetch import FetchRequest
        from aiokafka.record.memory_records import MemoryRecords
        from aiokafka.structs import TopicPartition

        producer, _ = await self._clients()
        client = producer.client
        try:
            if client.cluster.partitions_for_topic(wire) is None:
                await client._wait_on_metadata(wire)
            node = client.cluster.leader_for_partition(TopicPartition(wire, partition))
            if node is None or node == -1:
                node = client.get_random_node()
            request = FetchRequest(
                max_wait_ms,
                1,  # min_bytes
                FETCH_MAX_BYTES,
                0,  # read uncommitted
                [(wire, [(partition, start, FETCH_MAX_BYTES)])],
            )
            response = await client.send(node, request)
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        for _topic, partitions in response.topics:
            for number, error_code, highwater, *data in partitions:
                if number != partition:
                    continue
                if error_code == UNKNOWN_TOPIC_OR_PARTITION:
                    raise EngineTopicMissing(wire)
                if error_code == OFFSET_OUT_OF_RANGE:
                    raise _OutOfRange()
                if error_code:
                    raise TopicEngineError(f"Kafka fetch failed: error {error_code}")
                out: list[Any] = []
                batches = MemoryRecords(data[-1]) if data[-1] else None
                while batches is not None and batches.has_next():
                    batch = batches.next_batch()
                    if batch is None or batch.is_control_batch:
                        continue
                    out.extend(r for r in batch if r.offset >= start)
                return out, int(highwater)
        raise TopicEngineError(f"Kafka answered a fetch without {wire}/{partition}")

    async def read(self, wire: str, partition: int, start: int, limit: int) -> list[Delivered]:
        """From ``start`` on; when retention removed ``start``, from the first message held
        (the groups yield a ``Gap`` for the difference). Past the end: nothing."""
        try:
            records, _ = await self._fetch(wire, partition, start)
        except _OutOfRange:
            bounds = (await self._bounds(wire, [partition]))[partition]
            if start >= bounds.end or bounds.first <= start:
                return []
            records, _ = await self._fetch(wire, partition, bounds.first)
        return [self._delivered(wire, partition, r) for r in records[:limit]]

    async def _bounds(self, wire: str, partitions: list[int]) -> dict[int, PartitionOffsets]:
        """Each partition's first held offset (``ListOffsets(earliest)``) and its end (a fetch's
        high watermark: Tansu answers ``ListOffsets(latest)`` with the last *batch*'s base
        offset + 1)."""
        from aiokafka.structs import TopicPartition

        tps = [TopicPartition(wire, p) for p in partitions]
        async with self._probe_lock:
            if self._probe is None:
                self._probe = await self._new_consumer()
            try:
                firsts = await self._probe.beginning_offsets(tps)
            except Exception as exc:
                raise TopicEngineError(str(exc)) from exc
        out: dict[int, PartitionOffsets] = {}
        for tp in tps:
            first = int(firsts[tp])
            try:
                _, end = await self._fetch(wire, tp.partition, first, records=False)
            except _OutOfRange:  # pruned between the two requests
                _, end = await self._fetch(wire, tp.partition, first + 1, records=False)
            out[tp.partition] = PartitionOffsets(min(first, end), end)
        return out

    async def offsets(self, wire: str) -> dict[int, PartitionOffsets]:
        count = await self._partitions(wire)
        if not count:
            raise EngineTopicMissing(wire)
        return await self._bounds(wire, list(range(count)))

    async def prune(self, wire: str, older_than: datetime) -> int:
        """Kafka enforces the topic's retention itself (``retention.ms``)."""
        return 0

    @staticmethod
    def _delivered(wire: str, partition: int, record: Any) -> Delivered:
        return Delivered(
            topic=wire,
            partition=partition,
            offset=int(record.offset),
            key=bytes(record.key).decode() if record.key is not None else None,
            payload=orjson.loads(record.value) if record.value is not None else None,
            headers={k: bytes(v or b"").decode() for k, v in record.headers},
            timestamp=_millis(record.timestamp),
        )

    async def start_positions(
        self, wire: str, start: StartFrom, resume: ResumePoint | None
    ) -> dict[int, int]:
        bounds = await self.offsets(wire)
        if start == "latest" and resume is None:
            return {p: b.end for p, b in bounds.items()}
        positions = {p: b.first for p, b in bounds.items()}
        if resume is not None and resume.partition in bounds:
            # The resumed partition goes on after the id (a gap first if retention passed
            # it); the others restart from their first held message (at least once).
            b = bounds[resume.partition]
            positions[resume.partition] = min(resume.offset + 1, b.end)
        return positions
