"""What the topic bus needs from the outside: the state rows (``TopicRepo``, inside a unit of
work) and the engine that holds the messages (``TopicEngine``: embedded, NATS, Kafka).

Both are typed: the records are ``domain.topics``' dataclasses, never loose dicts.
"""

from __future__ import annotations

from typing import Protocol

from opstage.domain.topics import (
    Delivered,
    OutgoingMessage,
    Receipt,
    ResumePoint,
    StartFrom,
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

    async def __anext__(self) -> Delivered | None: ...

    async def aclose(self) -> None: ...


class TopicRepo(Protocol):
    async def insert(self, topic: Topic) -> None: ...

    async def get_by_wire(self, wire: str) -> Topic | None: ...

    async def delete(self, topic_id: str) -> bool: ...

    async def list(
        self, where: TopicFilter, page: int, page_size: int
    ) -> tuple[list[Topic], int]: ...

    async def agent_tenants(self, agent_id: str) -> tuple[str, ...]: ...


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
    ) -> TopicStream:
        """Joins consumer group ``group`` now (``EngineTopicMissing`` if the topic is gone),
        then streams this member's messages: members of one group share
        the topic's partitions, distinct groups each see every message. ``None`` is yielded
        after ``idle_seconds`` without a message (the caller's keep-alive)."""
