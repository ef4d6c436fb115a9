"""What the topic bus needs from the outside: the state rows (``TopicRepo``, inside a unit of
work) and the engine that holds the messages (``TopicEngine``: embedded, NATS, Kafka).

Both are typed: the records are ``domain.topics``' dataclasses, never loose dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from opstage.domain.topics import (
    CommittedOffset,
    Delivered,
    Gap,
    OutgoingMessage,
    PartitionOffsets,
    Receipt,
    ResumePoint,
    StartFrom,
    Subscription,
    Topic,
    TopicFilter,
)


class TopicEngineError(Exception):
    """The engine failed or could not be reached; nothing is known to have happened."""


class EngineTopicExists(TopicEngineError):
    """The engine already holds a topic of this name (made outside Opstage, or orphaned)."""


class EngineTopicMissing(TopicEngineError):
    """The engine holds no topic of this name."""


class TopicStream(Protocol):
    """One member's messages; ``aclose`` leaves the group (safe to call twice, or unstarted)."""

    def __aiter__(self) -> TopicStream: ...

    async def __anext__(self) -> Delivered | Gap | None: ...

    async def aclose(self) -> None: ...


class TopicRepo(Protocol):
    async def insert(self, topic: Topic) -> None: ...

    async def get_by_wire(self, wire: str) -> Topic | None: ...

    async def delete(self, topic_id: str) -> bool: ...

    async def list(
        self, where: TopicFilter, page: int, page_size: int
    ) -> tuple[list[Topic], int]: ...

    async def with_retention(self) -> tuple[Topic, ...]: ...

    async def agent_tenants(self, agent_id: str) -> tuple[str, ...]: ...


class SubscriptionRepo(Protocol):
    async def insert(self, sub: Subscription, committed: dict[int, int], now: datetime) -> None: ...

    async def get(self, wire: str, name: str) -> Subscription | None: ...

    async def page_of(
        self, wire: str | None, tenants: tuple[str, ...] | None, page: int, page_size: int
    ) -> tuple[list[Subscription], int]: ...

    async def all_subscriptions(self, limit: int) -> list[Subscription]: ...

    async def delete(self, subscription_id: str) -> bool: ...

    async def delete_of_topic(self, wire: str) -> list[str]: ...

    async def offsets(self, subscription_id: str) -> dict[int, CommittedOffset]: ...

    async def commit(
        self, subscription_id: str, commits: Iterable[tuple[int, int]], now: datetime
    ) -> None: ...

    async def count_delivery(self, subscription_id: str, partition: int, now: datetime) -> None: ...


class TopicEngine(Protocol):
    """One adapter per engine; the shared contract tests pin what each must do."""

    name: str

    async def close(self) -> None: ...

    async def create_topic(self, topic: Topic) -> None:
        """Raises ``EngineTopicExists`` if the engine has it already (never adopted)."""

    async def delete_topic(self, wire: str) -> None:
        """Raises ``EngineTopicMissing`` if the engine does not have it."""

    async def topic_exists(self, wire: str) -> bool: ...

    async def publish(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        """Returns only once the message is durable in the engine (the receipt is a promise).
        Raises ``EngineTopicMissing`` when the topic is gone from the engine."""

    async def subscribe(
        self,
        wire: str,
        group: str,
        start: StartFrom,
        resume: ResumePoint | None,
        idle_seconds: float,
        positions: dict[int, int] | None = None,
    ) -> TopicStream:
        """Joins consumer group ``group`` now (``EngineTopicMissing`` if the topic is gone),
        then streams this member's messages: members of one group share
        the topic's partitions, distinct groups each see every message. ``None`` is yielded
        after ``idle_seconds`` without a message (the caller's keep-alive). ``positions``
        (partition → first offset; a durable subscription's committed offsets) overrides
        ``start`` and ``resume`` when the group starts. A ``Gap`` is yielded when the next
        message of a partition is past the position asked for (retention pruned the rest)."""

    async def offsets(self, wire: str) -> dict[int, PartitionOffsets]:
        """Each partition's first held offset and high watermark (``EngineTopicMissing``)."""

    async def read(self, wire: str, partition: int, start: int, limit: int) -> list[Delivered]:
        """Up to ``limit`` messages of one partition from offset ``start`` on, in order."""

    async def prune(self, wire: str, older_than: datetime) -> int:
        """Drops messages produced before ``older_than`` (the topic's retention); returns how
        many. An engine that enforces retention itself (NATS ``max_age``) returns 0."""
