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
from datetime import datetime
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
        return self._js

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc = self._js = None
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
        from nats.js.errors import NoStreamResponseError, NotFoundError

        js = await self._jetstream()
        body = orjson.dumps({"k": message.key, "p": message.payload, "h": message.headers or None})
        headers = {"Nats-Msg-Id": message.idempotency_key} if message.idempotency_key else None
        try:
            ack = await js.publish(
                subject(wire, partition),
                body,
                stream=stream_name(wire, partition),
                headers=headers,
            )
        except (NoStreamResponseError, NotFoundError) as exc:
            raise EngineTopicMissing(wire) from exc
        except Exception as exc:
            if "no response" in str(exc).lower() or "not found" in str(exc).lower():
                raise EngineTopicMissing(wire) from exc
            raise TopicEngineError(str(exc)) from exc
        self._wake(wire)
        return Receipt(wire, partition, int(ack.seq) - 1, utcnow(), replayed=bool(ack.duplicate))

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
                        timestamp=raw.time or utcnow(),
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
