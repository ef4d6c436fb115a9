"""Topic bus use cases: topic CRUD (a dual write: state row, then engine), publish, subscribe.

Dual-write rules (the Agentic Bus seed, Phase 1):
- create: the state row (with its audit row) commits first, then the engine creates the topic.
  If the engine fails, the state row is deleted again (audited as rolled back); if that fails
  too, the error is logged with everything an operator needs to reconcile. An engine that
  already holds the topic (made outside Opstage) is never adopted: the create fails.
- delete: the state row goes first, then the engine's topic. An engine failure leaves the topic
  orphaned in the engine (logged and audited) rather than a dangling row that blocks re-creation.

Tenancy: an agent publishes and subscribes only in the tenants its registration granted
(``agents.topic_tenants``, the default tenant when none). Another tenant's topic answers 404
``TOPIC_NOT_FOUND``, exactly like a topic that does not exist.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.app.topic_ports import (
    EngineTopicExists,
    EngineTopicMissing,
    TopicEngine,
    TopicEngineError,
    TopicStream,
)
from opstage.app.topic_quota import PublishQuota
from opstage.domain.errors import Conflict, DomainError, NotFound, Unavailable, ValidationFailed
from opstage.domain.events import TopicChanged
from opstage.domain.ids import new_id
from opstage.domain.topics import (
    DEFAULT_PARTITIONS,
    DEFAULT_REPLICATION,
    Delivered,
    Gap,
    OutgoingMessage,
    Receipt,
    ResumePoint,
    StartFrom,
    Topic,
    TopicFilter,
    TopicName,
    header_problems,
    name_problems,
    parse_wire,
    partition_for,
    reserved_headers,
)

log = logging.getLogger("opstage.topics")
CACHE_SECONDS = 2.0  # how long another node's delete can go unseen by this node's publishes


def topic_not_found() -> NotFound:
    return NotFound("Topic not found.", code="TOPIC_NOT_FOUND")


def engine_unavailable(exc: BaseException | None = None) -> Unavailable:
    return Unavailable(
        "The topic engine failed or is unreachable; retry shortly.",
        code="TOPIC_ENGINE_UNAVAILABLE",
        retry_after_seconds=1,
    )


def topic_bus_disabled() -> NotFound:
    return NotFound("The topic bus is disabled on this server.", code="TOPIC_BUS_DISABLED")


@dataclass
class TopicBus:
    """The engine and this node's caches (topics by wire name, agents' tenants)."""

    engine: TopicEngine
    keepalive_seconds: float = 15.0
    quota: PublishQuota = field(default_factory=lambda: PublishQuota(0, 0))
    _topics: dict[str, tuple[Topic, float]] = field(default_factory=dict)
    _tenants: dict[str, tuple[tuple[str, ...], float]] = field(default_factory=dict)
    _round_robin: dict[str, itertools.count[int]] = field(default_factory=dict)
    # Open streams of durable subscriptions on this node, by (topic, subscription).
    _durable_streams: dict[tuple[str, str], int] = field(default_factory=dict)

    def left_durable(self, key: tuple[str, str]) -> None:
        n = self._durable_streams.get(key, 0) - 1
        if n > 0:
            self._durable_streams[key] = n
        else:
            self._durable_streams.pop(key, None)

    def forget(self, wire: str) -> None:
        self._topics.pop(wire, None)

    def next_partition(self, topic: Topic) -> int:
        counter = self._round_robin.get(topic.wire)
        if counter is None:
            counter = self._round_robin[topic.wire] = itertools.count()
        return next(counter) % topic.partitions


class TopicContext(UnitContext, Protocol):
    """What the topic bus's use cases use beyond units of work (``AppContext`` is one;
    ADR 0010): the bus, None when ``OPSTAGE_TOPIC_BUS_ENABLED`` is off (a feature, not an
    engine: ``_bus`` answers ``TOPIC_BUS_DISABLED``)."""

    topics: TopicBus | None


def _bus(ctx: TopicContext) -> TopicBus:
    if ctx.topics is None:
        raise topic_bus_disabled()
    return ctx.topics


@dataclass(frozen=True, slots=True)
class TopicSpec:
    namespace: str
    tenant: str
    name: str
    partitions: int = DEFAULT_PARTITIONS
    replication: int = DEFAULT_REPLICATION
    retention_ms: int | None = None
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    audit_publish: bool = False


def _audit_meta(topic: Topic) -> dict[str, Any]:
    return {
        "topic": topic.wire,
        "partitions": topic.partitions,
        "replication": topic.replication,
        "retentionMs": topic.retention_ms,
        "auditPublish": topic.audit_publish,
    }


async def create_topic(ctx: TopicContext, actor: Actor, spec: TopicSpec) -> Topic:
    bus = _bus(ctx)
    issues = name_problems(spec.namespace, spec.tenant, spec.name)
    if issues:
        raise ValidationFailed("Topic validation failed.", issues)
    now = ctx.clock()
    topic = Topic(
        id=new_id("top"),
        namespace=spec.namespace,
        tenant=spec.tenant,
        name=spec.name,
        partitions=spec.partitions,
        replication=spec.replication,
        retention_ms=spec.retention_ms,
        description=spec.description,
        labels=dict(spec.labels),
        created_at=now,
        created_by=actor.id,
        audit_publish=spec.audit_publish,
    )
    # 1. The state row (and its audit row) first: a concurrent create of the same name fails
    #    here, before either touches the engine.
    async with ctx.writer() as uow:
        if await uow.topics.get_by_wire(topic.wire) is not None:
            raise Conflict("A topic of this name exists.", code="TOPIC_EXISTS")
        await uow.topics.insert(topic)
        await write_audit(
            uow,
            actor,
            "topic.created",
            target_type="Topic",
            target_id=topic.id,
            metadata=_audit_meta(topic),
            now=now,
        )
        uow.record(TopicChanged(topic.id, topic.wire, "created"))
    # 2. Then the engine; on failure, the row goes again.
    try:
        await bus.engine.create_topic(topic)
    except EngineTopicExists as exc:
        await _roll_back_create(ctx, actor, topic, "the engine already holds this topic")
        raise Conflict(
            "The engine already holds a topic of this name that Opstage did not create; "
            "it is not adopted. Delete it in the engine, or choose another name.",
            code="TOPIC_EXISTS_IN_ENGINE",
            details={"topic": topic.wire, "engine": bus.engine.name},
        ) from exc
    except Exception as exc:
        await _roll_back_create(ctx, actor, topic, f"engine failed: {type(exc).__name__}")
        raise engine_unavailable(exc) from exc
    return topic


async def _roll_back_create(ctx: UnitContext, actor: Actor, topic: Topic, reason: str) -> None:
    try:
        async with ctx.writer() as uow:
            await uow.topics.delete(topic.id)
            await write_audit(
                uow,
                actor,
                "topic.create_rolled_back",
                target_type="Topic",
                target_id=topic.id,
                result="FAILURE",
                message=reason,
                metadata=_audit_meta(topic),
                now=ctx.clock(),
            )
            uow.record(TopicChanged(topic.id, topic.wire, "rolled_back"))
    except Exception:
        # Loud, with what an operator needs: the row stays and blocks re-creation until deleted.
        log.error(
            "topic create failed in the engine and its state row could not be rolled back",
            extra={"topic": topic.wire, "topic_id": topic.id, "reason": reason},
            exc_info=True,
        )


async def delete_topic(ctx: TopicContext, actor: Actor, wire: str) -> tuple[Topic, bool]:
    """The deleted topic, and whether the engine's copy went too (False: orphaned there)."""
    bus = _bus(ctx)
    now = ctx.clock()
    async with ctx.writer() as uow:
        topic = await uow.topics.get_by_wire(wire)
        if topic is None:
            raise topic_not_found()
        await uow.topics.delete(topic.id)
        # Its durable subscriptions go with it (ADR 0015), audited with the topic's row.
        dropped = await uow.subscriptions.delete_of_topic(topic.wire)
        await write_audit(
            uow,
            actor,
            "topic.deleted",
            target_type="Topic",
            target_id=topic.id,
            metadata={**_audit_meta(topic), "subscriptionsDeleted": dropped},
            now=now,
        )
        uow.record(TopicChanged(topic.id, topic.wire, "deleted"))
    bus.forget(wire)
    try:
        await bus.engine.delete_topic(wire)
    except EngineTopicMissing:
        log.warning("deleted topic was already gone from the engine", extra={"topic": wire})
    except Exception as exc:
        log.error(
            "topic deleted in Opstage but not in the engine: orphaned there, delete it by hand",
            extra={"topic": wire, "topic_id": topic.id, "engine": bus.engine.name},
            exc_info=True,
        )
        try:
            async with ctx.writer() as uow:
                await write_audit(
                    uow,
                    actor,
                    "topic.engine_orphaned",
                    target_type="Topic",
                    target_id=topic.id,
                    result="FAILURE",
                    message=f"engine delete failed: {type(exc).__name__}",
                    metadata=_audit_meta(topic),
                    now=ctx.clock(),
                )
        except DomainError:
            log.error("could not audit the orphaned topic", extra={"topic": wire})
        return topic, False
    return topic, True


async def list_topics(
    ctx: TopicContext, where: TopicFilter, page: int, page_size: int
) -> tuple[list[Topic], int]:
    _bus(ctx)
    async with ctx.reader() as uow:
        return await uow.topics.list(where, page, page_size)


async def get_topic(ctx: TopicContext, wire: str, tenants: tuple[str, ...] | None) -> Topic:
    """``tenants``: the caller's (an agent's); ``None`` for an admin, who sees every tenant."""
    name = parse_wire(wire)
    if name is None or (tenants is not None and name.tenant not in tenants):
        raise topic_not_found()
    bus = _bus(ctx)
    cached = bus._topics.get(wire)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    async with ctx.reader() as uow:
        topic = await uow.topics.get_by_wire(wire)
    if topic is None:
        bus.forget(wire)
        raise topic_not_found()
    bus._topics[wire] = (topic, time.monotonic() + CACHE_SECONDS)
    return topic


async def agent_tenants(ctx: TopicContext, agent_id: str) -> tuple[str, ...]:
    bus = _bus(ctx)
    cached = bus._tenants.get(agent_id)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    async with ctx.reader() as uow:
        tenants = await uow.topics.agent_tenants(agent_id)
    bus._tenants[agent_id] = (tenants, time.monotonic() + CACHE_SECONDS)
    return tenants


async def list_agent_topics(
    ctx: TopicContext, agent_id: str, where: TopicFilter, page: int, page_size: int
) -> tuple[list[Topic], int]:
    mine = await agent_tenants(ctx, agent_id)
    asked = where.tenants
    tenants = mine if asked is None else tuple(t for t in asked if t in mine)
    scoped = TopicFilter(where.namespace, tenants, where.name_prefix)
    return await list_topics(ctx, scoped, page, page_size)


def resolve_name(
    topic: str | None, namespace: str | None, tenant: str | None, name: str | None
) -> str:
    """The wire name from ``topic`` or the ``namespace``+``tenant``+``name`` triple."""
    if topic is not None:
        if namespace is not None or tenant is not None or name is not None:
            raise ValidationFailed(
                "Name the topic once.",
                [{"path": "topic", "message": "give topic or namespace+tenant+name, not both"}],
            )
        if parse_wire(topic) is None:
            raise ValidationFailed(
                "Topic validation failed.",
                [{"path": "topic", "message": "must be namespace.tenant.name"}],
            )
        return topic
    if namespace is None or tenant is None or name is None:
        raise ValidationFailed(
            "Topic validation failed.",
            [{"path": "topic", "message": "give topic or namespace+tenant+name"}],
        )
    issues = name_problems(namespace, tenant, name)
    if issues:
        raise ValidationFailed("Topic validation failed.", issues)
    return TopicName(namespace, tenant, name).wire


async def publish(
    ctx: TopicContext,
    agent_id: str,
    wire: str,
    payload: Any,
    *,
    key: str | None,
    headers: dict[str, str],
    idempotency_key: str | None,
) -> Receipt:
    bus = _bus(ctx)
    issues = header_problems(headers)
    if issues:
        raise ValidationFailed("Headers validation failed.", issues)
    reserved = reserved_headers(headers)
    if reserved:
        raise DomainError(
            "Headers under the server's reserved prefix cannot be set by a publisher.",
            code="TOPIC_HEADER_RESERVED",
            details={"headers": reserved},
        )
    bus.quota.take(agent_id)  # before any I/O: a flood costs the server nothing more
    topic = await get_topic(ctx, wire, await agent_tenants(ctx, agent_id))
    scoped_key = f"{agent_id}:{idempotency_key}" if idempotency_key is not None else None
    if key is not None:
        partition = partition_for(key, topic.partitions)
    elif scoped_key is not None:
        # A retry must land where its first attempt did: engines dedupe per partition (NATS).
        partition = partition_for(scoped_key, topic.partitions)
    else:
        partition = bus.next_partition(topic)
    message = OutgoingMessage(payload, key, headers, scoped_key)
    try:
        receipt = await bus.engine.publish(topic.wire, partition, message)
    except EngineTopicMissing as exc:
        bus.forget(wire)
        raise topic_not_found() from exc
    except TopicEngineError as exc:
        log.error("topic publish failed in the engine", extra={"topic": wire}, exc_info=True)
        raise engine_unavailable(exc) from exc
    if topic.audit_publish and not receipt.replayed:
        await _audit_publish(ctx, agent_id, topic, receipt, key)
    return receipt


async def _audit_publish(
    ctx: UnitContext, agent_id: str, topic: Topic, receipt: Receipt, key: str | None
) -> None:
    """One audit row per publish, only on topics flagged ``auditPublish`` (ADR 0015): the
    message is stored already, so a failed audit write is logged, not the publish's failure."""
    try:
        async with ctx.writer() as uow:
            await write_audit(
                uow,
                Actor("AGENT", agent_id),
                "topic.published",
                target_type="Topic",
                target_id=topic.id,
                metadata={
                    "topic": topic.wire,
                    "partition": receipt.partition,
                    "offset": receipt.offset,
                    "key": key,
                },
                now=ctx.clock(),
            )
    except DomainError:
        log.error("could not audit a publish", extra={"topic": topic.wire}, exc_info=True)


async def subscribe(
    ctx: TopicContext,
    agent_id: str,
    wire: str,
    subscription_id: str,
    start: StartFrom,
    resume: ResumePoint | None,
) -> TopicStream:
    """Checks access now (404 before the stream starts), then the engine's stream. A durable
    subscription of this name on this topic starts from its committed offsets (ADR 0015);
    they win over ``from`` and ``Last-Event-ID``."""
    from opstage.app.topic_subscriptions import durable_positions

    bus = _bus(ctx)
    topic = await get_topic(ctx, wire, await agent_tenants(ctx, agent_id))
    if resume is not None and resume.partition >= topic.partitions:
        # No stream of this topic sent that id; resuming from it would quietly start elsewhere.
        raise ValidationFailed(
            "Last-Event-ID must be an id this stream sent.",
            [
                {
                    "path": "Last-Event-ID",
                    "message": f"this topic has partitions 0-{topic.partitions - 1}",
                }
            ],
        )
    async with ctx.reader() as uow:
        durable = await uow.subscriptions.get(topic.wire, subscription_id)
    key = (topic.wire, subscription_id)
    positions = None
    if durable is not None:
        # A delivery is counted when the group starts on this node, not for each member
        # that joins a running group (whose positions are ahead of the commit anyway).
        first_here = bus._durable_streams.get(key, 0) == 0
        bus._durable_streams[key] = bus._durable_streams.get(key, 0) + 1
    try:
        if durable is not None:
            positions = await durable_positions(ctx, durable, count=first_here)
        stream = await bus.engine.subscribe(
            topic.wire, subscription_id, start, resume, bus.keepalive_seconds, positions
        )
    except BaseException as exc:
        if durable is not None:
            bus.left_durable(key)
        if isinstance(exc, EngineTopicMissing):
            bus.forget(wire)
            raise topic_not_found() from exc
        if isinstance(exc, TopicEngineError):
            raise engine_unavailable(exc) from exc
        raise
    if durable is None:
        return stream
    return _DurableStream(stream, lambda: bus.left_durable(key))


class _DurableStream:
    """The engine's stream, counted as one of this node's members of a durable group."""

    def __init__(self, inner: TopicStream, on_close: Callable[[], None]) -> None:
        self._inner, self._on_close, self._closed = inner, on_close, False

    def __aiter__(self) -> _DurableStream:
        return self

    async def __anext__(self) -> Delivered | Gap | None:
        return await self._inner.__anext__()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()
        await self._inner.aclose()
