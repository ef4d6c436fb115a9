"""Durable topic subscriptions (ADR 0015): create / list / get / delete, ack (commit), nack
(dead-letter), lag, and the committed offsets a durable SSE stream starts from.

- Committed offsets live in Opstage's database, one row per partition, so a subscription
  outlives connections, restarts and the engine's own consumer state; every engine only has
  to read from an offset and tell its high watermarks.
- Ack and nack are cumulative per partition, as Kafka commits are: acking offset ``o`` of
  partition ``p`` commits ``o + 1`` (never backwards).
- Redelivery: a durable stream starts at the committed offsets, so what was delivered and not
  acked comes again when the group next starts. There is no ack timeout and no ack mode to
  choose (ADR 0015): a body naming one is refused, never accepted and ignored.
- Max deliveries: each start of the durable group on a node at a partition's unacked head
  message counts one delivery of it; past ``max_deliveries`` the message goes to the DLQ topic (with
  ``opstage.origin.*`` headers) and the partition moves past it.
- Tenancy: a subscription belongs to its topic's tenant; another tenant's answers 404.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.context import Actor
from opstage.app.topic_ports import EngineTopicMissing, TopicEngineError
from opstage.app.topics import (
    TopicContext,
    _bus,
    engine_unavailable,
    get_topic,
    topic_not_found,
)
from opstage.domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from opstage.domain.events import SubscriptionChanged
from opstage.domain.ids import new_id
from opstage.domain.topics import (
    CommittedOffset,
    Delivered,
    OutgoingMessage,
    PartitionLag,
    PartitionOffsets,
    StartFrom,
    Subscription,
    Topic,
    origin_headers,
    partition_for,
)

log = logging.getLogger("opstage.topics")
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
MAX_DELIVERIES = 1000
METRICS_LIMIT = 500  # subscriptions whose lag one metrics scrape reads


def subscription_not_found() -> NotFound:
    return NotFound("Subscription not found.", code="TOPIC_SUBSCRIPTION_NOT_FOUND")


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    name: str
    start: StartFrom = "latest"
    max_deliveries: int | None = None
    dlq_topic: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """A subscription with its lag per partition (committed vs the engine's high watermark)."""

    subscription: Subscription
    partitions: list[PartitionLag]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def _audit_meta(sub: Subscription, **more: Any) -> dict[str, Any]:
    return {
        "topic": sub.topic,
        "subscription": sub.name,
        "maxDeliveries": sub.max_deliveries,
        "dlqTopic": sub.dlq_topic,
        **more,
    }


async def _offsets(ctx: TopicContext, wire: str) -> dict[int, PartitionOffsets]:
    try:
        return await _bus(ctx).engine.offsets(wire)
    except EngineTopicMissing as exc:
        raise topic_not_found() from exc
    except TopicEngineError as exc:
        raise engine_unavailable(exc) from exc


def _lags(
    committed: dict[int, CommittedOffset], bounds: dict[int, PartitionOffsets]
) -> list[PartitionLag]:
    return [
        PartitionLag(p, c.committed, bounds[p].end if p in bounds else c.committed)
        for p, c in sorted(committed.items())
    ]


async def _state(ctx: TopicContext, sub: Subscription) -> SubscriptionState:
    async with ctx.reader() as uow:
        committed = await uow.subscriptions.offsets(sub.id)
    return SubscriptionState(sub, _lags(committed, await _offsets(ctx, sub.topic)))


async def create_subscription(
    ctx: TopicContext,
    actor: Actor,
    wire: str,
    tenants: tuple[str, ...] | None,
    spec: SubscriptionSpec,
) -> SubscriptionState:
    """``tenants``: the caller's (an agent's), ``None`` for an admin."""
    topic = await get_topic(ctx, wire, tenants)
    issues = []
    if NAME.fullmatch(spec.name) is None:
        issues.append({"path": "name", "message": "1-200 of A-Z, a-z, 0-9, '_', '.', ':', '-'"})
    if spec.max_deliveries is not None and spec.dlq_topic is None:
        issues.append({"path": "dlqTopic", "message": "maxDeliveries needs a dlqTopic"})
    if spec.dlq_topic == topic.wire:
        issues.append({"path": "dlqTopic", "message": "must not be the subscribed topic"})
    if issues:
        raise ValidationFailed("Subscription validation failed.", issues)
    if spec.dlq_topic is not None:
        # Within the subscriber's tenants (404 otherwise), and never another tenant's: a DLQ
        # would otherwise carry one tenant's messages into another's topic.
        dlq = await get_topic(ctx, spec.dlq_topic, tenants)
        if dlq.tenant != topic.tenant:
            raise topic_not_found()
    bounds = await _offsets(ctx, topic.wire)
    start = {p: (b.first if spec.start == "earliest" else b.end) for p, b in bounds.items()}
    now = ctx.clock()
    sub = Subscription(
        id=new_id("tsb"),
        topic_id=topic.id,
        topic=topic.wire,
        tenant=topic.tenant,
        name=spec.name,
        max_deliveries=spec.max_deliveries,
        dlq_topic=spec.dlq_topic,
        created_at=now,
        created_by=actor.id,
    )
    async with ctx.writer() as uow:
        if await uow.subscriptions.get(topic.wire, spec.name) is not None:
            raise Conflict(
                "A subscription of this name exists on this topic.",
                code="TOPIC_SUBSCRIPTION_EXISTS",
            )
        await uow.subscriptions.insert(sub, start, now)
        await write_audit(
            uow,
            actor,
            "topic.subscription.created",
            target_type="TopicSubscription",
            target_id=sub.id,
            metadata=_audit_meta(sub, start=spec.start),
            now=now,
        )
        state = SubscriptionState(
            sub, [PartitionLag(p, start[p], bounds[p].end) for p in sorted(start)]
        )
        uow.record(SubscriptionChanged(sub.id, sub.topic, sub.name, "created", state.lag))
    return state


async def find_subscription(
    ctx: TopicContext, wire: str, name: str, tenants: tuple[str, ...] | None
) -> Subscription:
    await get_topic(ctx, wire, tenants)  # 404 for another tenant's topic, as for a missing one
    async with ctx.reader() as uow:
        sub = await uow.subscriptions.get(wire, name)
    if sub is None:
        raise subscription_not_found()
    return sub


async def get_subscription(
    ctx: TopicContext, wire: str, name: str, tenants: tuple[str, ...] | None
) -> SubscriptionState:
    return await _state(ctx, await find_subscription(ctx, wire, name, tenants))


async def list_subscriptions(
    ctx: TopicContext, wire: str | None, tenants: tuple[str, ...] | None, page: int, page_size: int
) -> tuple[list[SubscriptionState], int]:
    if wire is not None:
        await get_topic(ctx, wire, tenants)
    async with ctx.reader() as uow:
        subs, total = await uow.subscriptions.page_of(wire, tenants, page, page_size)
    return [await _state(ctx, s) for s in subs], total


async def delete_subscription(
    ctx: TopicContext, actor: Actor, wire: str, name: str, tenants: tuple[str, ...] | None
) -> Subscription:
    await get_topic(ctx, wire, tenants)
    now = ctx.clock()
    async with ctx.writer() as uow:
        sub = await uow.subscriptions.get(wire, name)
        if sub is None:
            raise subscription_not_found()
        await uow.subscriptions.delete(sub.id)
        await write_audit(
            uow,
            actor,
            "topic.subscription.deleted",
            target_type="TopicSubscription",
            target_id=sub.id,
            metadata=_audit_meta(sub),
            now=now,
        )
        uow.record(SubscriptionChanged(sub.id, sub.topic, sub.name, "deleted"))
    return sub


def _check_offset(
    topic: Topic, bounds: dict[int, PartitionOffsets], partition: int, offset: int, path: str
) -> None:
    if not 0 <= partition < topic.partitions or partition not in bounds:
        raise ValidationFailed(
            "Offset validation failed.",
            [{"path": f"{path}partition", "message": f"0-{topic.partitions - 1}"}],
        )
    if not 0 <= offset < bounds[partition].end:
        raise ValidationFailed(
            "Offset validation failed.",
            [{"path": f"{path}offset", "message": "not an offset this partition has given"}],
        )


async def ack(
    ctx: TopicContext,
    actor: Actor,
    wire: str,
    name: str,
    tenants: tuple[str, ...] | None,
    offsets: list[tuple[int, int]],
) -> SubscriptionState:
    """Commits ``offset + 1`` for each ``(partition, offset)`` (cumulative, never backwards)."""
    topic = await get_topic(ctx, wire, tenants)
    sub = await find_subscription(ctx, wire, name, tenants)
    bounds = await _offsets(ctx, wire)
    for i, (p, o) in enumerate(offsets):
        _check_offset(topic, bounds, p, o, f"offsets.{i}.")
    commits: dict[int, int] = {}
    for p, o in offsets:
        commits[p] = max(commits.get(p, 0), o + 1)
    async with ctx.writer() as uow:
        before = await uow.subscriptions.offsets(sub.id)
        await uow.subscriptions.commit(sub.id, commits.items(), ctx.clock())
        after = await uow.subscriptions.offsets(sub.id)
        state = SubscriptionState(sub, _lags(after, bounds))
        if after != before:
            uow.record(SubscriptionChanged(sub.id, sub.topic, sub.name, "lag_changed", state.lag))
    return state


async def nack(
    ctx: TopicContext,
    actor: Actor,
    wire: str,
    name: str,
    tenants: tuple[str, ...] | None,
    partition: int,
    offset: int,
    reason: str | None,
) -> SubscriptionState:
    """Dead-letters one message (to the subscription's DLQ topic) and commits past it."""
    topic = await get_topic(ctx, wire, tenants)
    sub = await find_subscription(ctx, wire, name, tenants)
    if sub.dlq_topic is None:
        raise Conflict(
            "This subscription has no DLQ topic: ack the message, or recreate the "
            "subscription with a dlqTopic.",
            code="TOPIC_SUBSCRIPTION_NO_DLQ",
        )
    bounds = await _offsets(ctx, wire)
    _check_offset(topic, bounds, partition, offset, "")
    message = await _message_at(ctx, wire, partition, offset)
    if message is None:
        raise NotFound("The message is no longer held (retention).", code="TOPIC_MESSAGE_NOT_FOUND")
    async with ctx.reader() as uow:
        committed = await uow.subscriptions.offsets(sub.id)
    deliveries = committed[partition].deliveries if partition in committed else 0
    await dead_letter(ctx, actor, sub, message, f"nack: {reason}" if reason else "nack", deliveries)
    return await _state(ctx, sub)


async def _message_at(
    ctx: TopicContext, wire: str, partition: int, offset: int
) -> Delivered | None:
    try:
        found = await _bus(ctx).engine.read(wire, partition, offset, 1)
    except EngineTopicMissing as exc:
        raise topic_not_found() from exc
    except TopicEngineError as exc:
        raise engine_unavailable(exc) from exc
    return found[0] if found and found[0].offset == offset else None


async def dead_letter(
    ctx: TopicContext,
    actor: Actor,
    sub: Subscription,
    message: Delivered,
    reason: str,
    deliveries: int,
) -> None:
    """Publishes ``message`` to the DLQ topic with its origin headers, then commits past it
    and audits the move. The DLQ publish carries an idempotency key of the origin, so a
    repeat (a retry, two nodes) stores it once."""
    assert sub.dlq_topic is not None
    bus = _bus(ctx)
    try:
        dlq = await get_topic(ctx, sub.dlq_topic, None)
    except DomainError:
        log.error("a DLQ topic is gone", extra={"subscription": sub.id, "dlq": sub.dlq_topic})
        raise
    idem = f"dlq:{sub.id}:{message.partition}:{message.offset}"
    target = partition_for(message.key if message.key is not None else idem, dlq.partitions)
    out = OutgoingMessage(
        message.payload,
        message.key,
        origin_headers(message, sub.name, reason, deliveries),
        idem,
    )
    try:
        receipt = await bus.engine.publish(dlq.wire, target, out)
    except EngineTopicMissing as exc:
        raise topic_not_found() from exc
    except TopicEngineError as exc:
        raise engine_unavailable(exc) from exc
    now = ctx.clock()
    async with ctx.writer() as uow:
        await uow.subscriptions.commit(sub.id, [(message.partition, message.offset + 1)], now)
        await write_audit(
            uow,
            actor,
            "topic.subscription.dlq",
            target_type="TopicSubscription",
            target_id=sub.id,
            message=reason,
            metadata=_audit_meta(
                sub,
                partition=message.partition,
                offset=message.offset,
                deliveries=deliveries,
                dlqPartition=receipt.partition,
                dlqOffset=receipt.offset,
            ),
            now=now,
        )
        uow.record(SubscriptionChanged(sub.id, sub.topic, sub.name, "dlq"))


async def durable_positions(
    ctx: TopicContext, sub: Subscription, *, count: bool = True
) -> dict[int, int]:
    """Where a durable stream starts: the committed offsets, after counting this start as one
    delivery of each partition's unacked head and dead-lettering heads past max deliveries
    (``count``: the group starts on this node; a member joining a running group counts none)."""
    if not count:
        async with ctx.reader() as uow:
            return {p: c.committed for p, c in (await uow.subscriptions.offsets(sub.id)).items()}
    bounds = await _offsets(ctx, sub.topic)
    async with ctx.writer() as uow:
        committed = await uow.subscriptions.offsets(sub.id)
        for p, c in committed.items():
            if p in bounds and c.committed < bounds[p].end:
                await uow.subscriptions.count_delivery(sub.id, p, ctx.clock())
        committed = await uow.subscriptions.offsets(sub.id)
    if sub.max_deliveries is not None and sub.dlq_topic is not None:
        for p, c in committed.items():
            if c.deliveries <= sub.max_deliveries or p not in bounds:
                continue
            head = await _bus(ctx).engine.read(sub.topic, p, c.committed, 1)
            if not head:
                continue
            try:
                await dead_letter(
                    ctx, Actor.system(), sub, head[0], "max_deliveries", c.deliveries - 1
                )
            except DomainError:
                # The DLQ topic is gone or its engine failed: the message is delivered again
                # rather than the subscriber refused (a 404 would name the wrong topic).
                log.error(
                    "could not dead-letter a message past max deliveries",
                    extra={"subscription": sub.id, "partition": p, "offset": head[0].offset},
                )
                continue
            async with ctx.writer() as uow:  # the next head's first delivery is this start
                await uow.subscriptions.count_delivery(sub.id, p, ctx.clock())
        async with ctx.reader() as uow:
            committed = await uow.subscriptions.offsets(sub.id)
    return {p: c.committed for p, c in committed.items()}


async def subscription_lags(ctx: TopicContext) -> list[SubscriptionState]:
    """Every subscription's lag (bounded), for metrics; an engine failure skips that one."""
    async with ctx.reader() as uow:
        subs = await uow.subscriptions.all_subscriptions(METRICS_LIMIT)
    out = []
    for sub in subs:
        try:
            out.append(await _state(ctx, sub))
        except DomainError:
            continue
    return out
