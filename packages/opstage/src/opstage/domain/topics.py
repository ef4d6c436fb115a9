"""The topic bus's domain: topic names, the records that cross the engine port, and the rules
every engine shares (partitioning, header caps, the reserved header prefix).

A topic is ``namespace + tenant + name``; its wire name is ``{namespace}.{tenant}.{name}``. Each
fragment is ``[A-Za-z0-9_-]{1,80}``; dots are reserved as separators, so a wire name splits
back into exactly one triple and two tenants asking for the same short name get two topics.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

FRAGMENT: Final = re.compile(r"[A-Za-z0-9_-]{1,80}")
DEFAULT_TENANT: Final = "default"  # the one workspace's tenant (domain/workspace.py)
DEFAULT_PARTITIONS: Final = 3
MAX_PARTITIONS: Final = 64
DEFAULT_REPLICATION: Final = 1
RESERVED_HEADER_PREFIX: Final = "opstage."
MAX_HEADERS: Final = 20
MAX_HEADER_BYTES: Final = 256  # each name and each value
MAX_HEADERS_TOTAL_BYTES: Final = 4096  # all names and values together
MAX_LABELS: Final = 20

StartFrom = Literal["earliest", "latest"]


@dataclass(frozen=True, slots=True)
class TopicName:
    namespace: str
    tenant: str
    name: str

    @property
    def wire(self) -> str:
        return f"{self.namespace}.{self.tenant}.{self.name}"


def fragment_problem(value: object) -> str | None:
    if not isinstance(value, str) or FRAGMENT.fullmatch(value) is None:
        return "must be 1-80 characters of A-Z, a-z, 0-9, '_' or '-' (dots are reserved)"
    return None


def parse_wire(wire: str) -> TopicName | None:
    """``ns.tenant.name`` → its triple, or ``None`` when it is not a valid wire name."""
    parts = wire.split(".")
    if len(parts) != 3 or any(fragment_problem(p) for p in parts):
        return None
    return TopicName(parts[0], parts[1], parts[2])


def name_problems(namespace: object, tenant: object, name: object) -> list[dict[str, str]]:
    issues = []
    for path, value in (("namespace", namespace), ("tenant", tenant), ("name", name)):
        problem = fragment_problem(value)
        if problem:
            issues.append({"path": path, "message": problem})
    return issues


def header_problems(headers: dict[str, str]) -> list[dict[str, str]]:
    """Caps: at most 20 headers, each name and value at most 256 bytes, 4 KiB in all."""
    issues: list[dict[str, str]] = []
    if len(headers) > MAX_HEADERS:
        issues.append({"path": "headers", "message": f"at most {MAX_HEADERS} headers"})
    total = 0
    for key, value in headers.items():
        k, v = len(key.encode()), len(value.encode())
        total += k + v
        if k == 0 or k > MAX_HEADER_BYTES:
            issues.append(
                {"path": f"headers.{key}", "message": f"name must be 1-{MAX_HEADER_BYTES} bytes"}
            )
        if v > MAX_HEADER_BYTES:
            issues.append(
                {"path": f"headers.{key}", "message": f"value exceeds {MAX_HEADER_BYTES} bytes"}
            )
    if total > MAX_HEADERS_TOTAL_BYTES:
        issues.append(
            {"path": "headers", "message": f"exceed {MAX_HEADERS_TOTAL_BYTES} bytes in all"}
        )
    return issues


def reserved_headers(headers: dict[str, str]) -> list[str]:
    """Header names under the server's own prefix (case-insensitive): clients may not set them."""
    return sorted(k for k in headers if k.lower().startswith(RESERVED_HEADER_PREFIX))


def partition_for(key: str, partitions: int) -> int:
    """The partition of a keyed message: CRC-32 of the key's UTF-8 bytes, modulo the count.

    Stable across processes, restarts and engines (Python's ``hash`` is salted per process),
    so one key always lands on one partition and its messages stay in order."""
    return zlib.crc32(key.encode()) % partitions


@dataclass(frozen=True, slots=True)
class Topic:
    """A registered topic: the state row Opstage keeps (the engine holds the messages)."""

    id: str
    namespace: str
    tenant: str
    name: str
    partitions: int
    replication: int
    retention_ms: int | None
    description: str | None
    labels: dict[str, str]
    created_at: datetime
    created_by: str | None = None
    # Every publish to it is audited (ADR 0015); off, publishes are not audited one by one.
    audit_publish: bool = False

    @property
    def wire(self) -> str:
        return f"{self.namespace}.{self.tenant}.{self.name}"

    @property
    def topic_name(self) -> TopicName:
        return TopicName(self.namespace, self.tenant, self.name)


@dataclass(frozen=True, slots=True)
class TopicFilter:
    namespace: str | None = None
    tenants: tuple[str, ...] | None = None  # None: every tenant (an admin)
    name_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    payload: Any
    key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None  # already scoped to its publisher


@dataclass(frozen=True, slots=True)
class Receipt:
    topic: str
    partition: int
    offset: int
    produced_at: datetime
    replayed: bool = False  # an Idempotency-Key seen before: the original receipt


@dataclass(frozen=True, slots=True)
class Delivered:
    topic: str
    partition: int
    offset: int
    key: str | None
    payload: Any
    headers: dict[str, str]
    timestamp: datetime

    @property
    def event_id(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a reconnecting subscriber left off: the last ``partition:offset`` it saw."""

    partition: int
    offset: int


def parse_event_id(value: str) -> ResumePoint | None:
    head, sep, tail = value.strip().partition(":")
    if not sep or not head.isdigit() or not tail.isdigit() or len(head) > 6 or len(tail) > 18:
        return None
    return ResumePoint(int(head), int(tail))


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages a subscriber asked for that the engine no longer holds: the stream jumps from
    ``requested`` to ``first_available`` (``bus.gap``). ``retention``: pruned by the topic's
    retention; ``buffer``: dropped from a live buffer (no engine built here keeps one)."""

    topic: str
    partition: int
    requested: int
    first_available: int
    reason: Literal["retention", "buffer"] = "retention"


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """One partition's bounds in the engine: the first offset it still holds (``end`` when it
    holds none) and the next offset a publish gets (its high watermark)."""

    first: int
    end: int


def origin_headers(
    message: Delivered, subscription: str, reason: str, deliveries: int
) -> dict[str, str]:
    """The reserved headers a dead-lettered message carries (ADR 0015): where it came from,
    why, and how often it was delivered. Publishers cannot set ``opstage.*`` headers, so these
    are the server's word."""
    return {
        **message.headers,
        f"{RESERVED_HEADER_PREFIX}origin.topic": message.topic,
        f"{RESERVED_HEADER_PREFIX}origin.partition": str(message.partition),
        f"{RESERVED_HEADER_PREFIX}origin.offset": str(message.offset),
        f"{RESERVED_HEADER_PREFIX}origin.subscription": subscription,
        f"{RESERVED_HEADER_PREFIX}dlq.reason": reason,
        f"{RESERVED_HEADER_PREFIX}delivery.count": str(deliveries),
    }


@dataclass(frozen=True, slots=True)
class Subscription:
    """A durable subscription: a consumer group whose committed offsets live in Opstage's
    database (ADR 0015), so it outlives connections, restarts and the engine's own state."""

    id: str
    topic_id: str
    topic: str  # wire name
    tenant: str
    name: str  # the consumer group id, the SSE path's subscriptionId
    max_deliveries: int | None
    dlq_topic: str | None
    created_at: datetime
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    partition: int
    committed: int  # the next offset the subscription reads
    deliveries: int  # durable stream starts at ``committed`` since it last moved


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)
