"""The NATS JetStream topic engine (``OPSTAGE_TOPIC_BUS_ENGINE=nats``; needs ``nats-py``).

- One stream per partition, ``OPSTAGE_<sha256(wire)[:24]>_<p>`` on the subject
  ``opstage.topics.<wire>.<p>``, file storage, ``max_age`` from the topic's retention. The
  stream's sequence is the partition's offset + 1, so offsets are dense and start at 0.
- ``publish`` returns after JetStream's acknowledgement (stored); ``Idempotency-Key`` travels as
  ``Nats-Msg-Id``, so JetStream's duplicate window (2 min) answers a repeat with the first
  sequence.
- Consumer groups as on the embedded engine (``pubsub/groups.py``): coordinated in this
  process, reading partitions by sequence with ``get_msg(next_by_subj)``. A resumed subscriber's
  other partitions restart from their earliest retained message (at least once).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from opstage.app.topic_ports import EngineTopicExists, EngineTopicMissing, TopicEngineError
from opstage.domain.timeutil import utcnow
from opstage.domain.topics import (
    MAX_PARTITIONS,
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
ACK_TIMEOUT_SECONDS = 5.0  # as nats-py's js.publish
NO_RESPONDERS = "503"
STREAM_NOT_FOUND = 10059


def _time(millis: int | None) -> datetime:
    if not millis:
        return utcnow()
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TopicEngineError("JetStream did not acknowledge the message in time"))


def stream_name(wire: str, partition: int) -> str:
    return f"OPSTAGE_{hashlib.sha256(wire.encode()).hexdigest()[:24]}_{partition}"


def subject(wire: str, partition: int) -> str:
    return f"opstage.topics.{wire}.{partition}"


class NatsTopicEngine(PartitionedLogGroups):
    name = "nats"

    def __init__(self, url: str, *, poll_seconds: float = 1.0) -> None:
        super().__init__(poll_seconds=poll_seconds)
        self._url = url
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()
        self._ack_prefix = ""
        self._acks: dict[str, asyncio.Future[Any]] = {}
        self._sent = 0

    async def _jetstream(self) -> Any:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        async with self._lock:
            if self._js is None or not self._nc.is_connected:
                import nats

                try:
                    self._nc = await nats.connect(
                        self._url, connect_timeout=2, max_reconnect_attempts=3
                    )
                except Exception as exc:
                    raise TopicEngineError(f"cannot reach NATS: {exc}") from exc
                self._js = self._nc.jetstream()
                # Every publish's acknowledgement comes to one subscription (see ``publish``).
                self._ack_prefix = self._nc.new_inbox()
                await self._nc.subscribe(self._ack_prefix + ".*", cb=self._on_ack)
        return self._js

    async def _on_ack(self, msg: Any) -> None:
        waiter = self._acks.pop(msg.subject, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc = self._js = None
        for waiter in self._acks.values():
            if not waiter.done():
                waiter.set_exception(TopicEngineError("the NATS connection was closed"))
        self._acks.clear()
        for wire in list(self._signals):
            self._wake(wire)

    async def _partitions(self, wire: str) -> list[int]:
        from nats.js.errors import NotFoundError

        js = await self._jetstream()
        found = []
        for p in range(MAX_PARTITIONS):
            try:
                await js.stream_info(stream_name(wire, p))
            except NotFoundError:
                break
            except Exception as exc:
                raise TopicEngineError(str(exc)) from exc
            found.append(p)
        return found

    async def create_topic(self, topic: Topic) -> None:
        from nats.js.api import StorageType, StreamConfig

        if await self._partitions(topic.wire):
            raise EngineTopicExists(topic.wire)
        js = await self._jetstream()
        try:
            for p in range(topic.partitions):
                await js.add_stream(
                    StreamConfig(
                        name=stream_name(topic.wire, p),
                        subjects=[subject(topic.wire, p)],
                        storage=StorageType.FILE,
                        num_replicas=topic.replication,
                        max_age=topic.retention_ms / 1000 if topic.retention_ms else None,
                        duplicate_window=DUPLICATE_WINDOW_SECONDS,
                    )
                )
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc

    async def delete_topic(self, wire: str) -> None:
        found = await self._partitions(wire)
        if not found:
            raise EngineTopicMissing(wire)
        js = await self._jetstream()
        try:
            for p in found:
                await js.delete_stream(stream_name(wire, p))
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        self._topic_deleted(wire)

    async def topic_exists(self, wire: str) -> bool:
        return bool(await self._partitions(wire))

    async def publish(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        """JetStream's publish, pipelined: the message goes out as a core publish whose reply
        subject is this engine's acknowledgement inbox, and the ack resolves its future. As
        ``js.publish`` does, minus a request inbox, a ``wait_for`` and a JSON model per message:
        about half the client CPU per publish (in-process, 16 publishers: 65 → 36 µs; 64
        publishers: 56 → 25 µs, and 1,920 → 5,504 msg/s)."""
        await self._jetstream()
        nc = self._nc
        # The message carries its time (ms): the receipt, a replay and a reader all show it.
        millis: int | None = time.time_ns() // 1_000_000
        body = orjson.dumps(
            {"k": message.key, "p": message.payload, "h": message.headers or None, "t": millis}
        )
        headers = {"Nats-Expected-Stream": stream_name(wire, partition)}
        if message.idempotency_key:
            headers["Nats-Msg-Id"] = message.idempotency_key
        self._sent += 1
        reply = f"{self._ack_prefix}.{self._sent}"
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._acks[reply] = waiter
        expiry = loop.call_later(ACK_TIMEOUT_SECONDS, _expire, waiter)
        try:
            await nc.publish(subject(wire, partition), body, reply=reply, headers=headers)
            msg = await waiter
        except TopicEngineError:
            raise
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        finally:
            expiry.cancel()
            self._acks.pop(reply, None)
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            raise EngineTopicMissing(wire)  # no stream listens on the subject any more
        ack = orjson.loads(msg.data or b"{}")
        error = ack.get("error")
        if error is not None:
            if error.get("err_code") == STREAM_NOT_FOUND or error.get("code") == 404:
                raise EngineTopicMissing(wire)
            raise TopicEngineError(f"JetStream refused the message: {error}")
        if ack.get("duplicate"):
            # The first message's time, read back from the stream (replays are rare).
            millis = await self._stored_millis(wire, partition, int(ack["seq"]))
        else:
            self._wake(wire)
        return Receipt(
            wire, partition, int(ack["seq"]) - 1, _time(millis), replayed=bool(ack.get("duplicate"))
        )

    async def _stored_millis(self, wire: str, partition: int, seq: int) -> int | None:
        try:
            raw = await self._js.get_msg(stream_name(wire, partition), seq)
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        body = orjson.loads(raw.data or b"null")
        return body.get("t") if isinstance(body, dict) else None

    async def read(self, wire: str, partition: int, start: int, limit: int) -> list[Delivered]:
        from nats.js.errors import NotFoundError

        js = await self._jetstream()
        out: list[Delivered] = []
        seq = start + 1
        try:
            while len(out) < limit:
                try:
                    raw = await js.get_msg(
                        stream_name(wire, partition),
                        seq,
                        subject=subject(wire, partition),
                        next=True,
                    )
                except NotFoundError:
                    break
                body = orjson.loads(raw.data or b"null")
                out.append(
                    Delivered(
                        topic=wire,
                        partition=partition,
                        offset=int(raw.seq) - 1,
                        key=body.get("k"),
                        payload=body.get("p"),
                        headers=dict(body.get("h") or {}),
                        timestamp=_time(body.get("t")) if body.get("t") else raw.time or utcnow(),
                    )
                )
                seq = int(raw.seq) + 1
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        return out

    async def start_positions(
        self, wire: str, start: StartFrom, resume: ResumePoint | None
    ) -> dict[int, int]:
        js = await self._jetstream()
        found = await self._partitions(wire)
        if not found:
            raise EngineTopicMissing(wire)
        positions: dict[int, int] = {}
        ends: dict[int, int] = {}
        try:
            for p in found:
                state = (await js.stream_info(stream_name(wire, p))).state
                end = ends[p] = int(state.last_seq)
                earliest = int(state.first_seq) - 1 if state.messages else end
                positions[p] = end if start == "latest" and resume is None else earliest
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        if resume is not None and resume.partition in positions:
            # Not clamped to what is still held: a resume behind ``max_age`` gets ``bus.gap``.
            positions[resume.partition] = min(resume.offset + 1, ends[resume.partition])
        return positions

    async def offsets(self, wire: str) -> dict[int, PartitionOffsets]:
        js = await self._jetstream()
        found = await self._partitions(wire)
        if not found:
            raise EngineTopicMissing(wire)
        out: dict[int, PartitionOffsets] = {}
        try:
            for p in found:
                state = (await js.stream_info(stream_name(wire, p))).state
                end = int(state.last_seq)
                out[p] = PartitionOffsets(int(state.first_seq) - 1 if state.messages else end, end)
        except Exception as exc:
            raise TopicEngineError(str(exc)) from exc
        return out

    async def prune(self, wire: str, older_than: datetime) -> int:
        """JetStream enforces the topic's retention itself (each stream's ``max_age``)."""
        return 0
