"""Durable topic subscriptions (ADR 0015; docs/topics.md).

Admin (session; viewer+ reads, operator+ changes):
  ``POST|GET /api/admin/topics/{topic}/subscriptions`` ·
  ``GET|DELETE /api/admin/topics/{topic}/subscriptions/{name}``
Agents (agent token; their tenants only, another tenant's answers 404):
  ``POST|GET /api/agents/{agentId}/topics/subscriptions`` ·
  ``GET|DELETE /api/agents/{agentId}/topics/subscriptions/{name}?topic=`` ·
  ``POST /api/agents/{agentId}/topics/subscriptions/{name}/ack`` ·
  ``POST /api/agents/{agentId}/topics/subscriptions/{name}/nack``
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from opstage.api.deps import Agent, Ctx, admin_actor, read_json, request_actor, require
from opstage.api.envelope import ok, page
from opstage.api.models import TopicAckRequest, TopicNackRequest, TopicSubscriptionCreateRequest
from opstage.api.queries import PageNo, PageSize
from opstage.api.rbac import READ
from opstage.app import topic_subscriptions as subs
from opstage.app.auth import SessionInfo
from opstage.app.context import Actor
from opstage.app.topics import agent_tenants
from opstage.domain.errors import ValidationFailed
from opstage.domain.timeutil import iso

router = APIRouter(tags=["Topics"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Writer = Annotated[SessionInfo, Depends(require("topics:write"))]
TopicQuery = Annotated[str, Query(min_length=1, max_length=242)]
OptionalTopic = Annotated[str | None, Query(min_length=1, max_length=242)]


def subscription_view(state: subs.SubscriptionState) -> dict[str, Any]:
    s = state.subscription
    return {
        "id": s.id,
        "topic": s.topic,
        "tenant": s.tenant,
        "name": s.name,
        "maxDeliveries": s.max_deliveries,
        "dlqTopic": s.dlq_topic,
        "createdAt": iso(s.created_at),
        "lag": state.lag,
        "partitions": [
            {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag}
            for p in state.partitions
        ],
    }


def _spec(body: TopicSubscriptionCreateRequest) -> subs.SubscriptionSpec:
    return subs.SubscriptionSpec(body.name, body.start, body.max_deliveries, body.dlq_topic)


def _agent_actor(request: Request, agent: Any) -> Actor:
    return request_actor(request, type_="AGENT", id_=agent.agent_id)


# --- admin ---------------------------------------------------------------------------------


@router.post("/api/admin/topics/{topic}/subscriptions")
async def admin_create(request: Request, ctx: Ctx, session: Writer, topic: str) -> Response:
    body = await read_json(request, TopicSubscriptionCreateRequest)
    if body.topic is not None and body.topic != topic:
        raise ValidationFailed(
            "Subscription validation failed.",
            [{"path": "topic", "message": "the path names the topic"}],
        )
    state = await subs.create_subscription(
        ctx, admin_actor(request, session), topic, None, _spec(body)
    )
    return ok(subscription_view(state))


@router.get("/api/admin/topics/{topic}/subscriptions")
async def admin_list(
    ctx: Ctx, _: Reader, topic: str, page_: PageNo = 1, page_size: PageSize = 20
) -> Response:
    rows, total = await subs.list_subscriptions(ctx, topic, None, page_, page_size)
    return page([subscription_view(r) for r in rows], page=page_, page_size=page_size, total=total)


@router.get("/api/admin/topics/{topic}/subscriptions/{name}")
async def admin_get(ctx: Ctx, _: Reader, topic: str, name: str) -> Response:
    return ok(subscription_view(await subs.get_subscription(ctx, topic, name, None)))


@router.delete("/api/admin/topics/{topic}/subscriptions/{name}")
async def admin_delete(
    request: Request, ctx: Ctx, session: Writer, topic: str, name: str
) -> Response:
    sub = await subs.delete_subscription(ctx, admin_actor(request, session), topic, name, None)
    return ok({"id": sub.id, "topic": sub.topic, "name": sub.name, "deleted": True})


# --- agents --------------------------------------------------------------------------------


@router.post("/api/agents/{agentId}/topics/subscriptions")
async def agent_create(request: Request, ctx: Ctx, agent: Agent) -> Response:
    body = await read_json(request, TopicSubscriptionCreateRequest)
    if body.topic is None:
        raise ValidationFailed(
            "Subscription validation failed.", [{"path": "topic", "message": "Field required"}]
        )
    tenants = await agent_tenants(ctx, agent.agent_id)
    state = await subs.create_subscription(
        ctx, _agent_actor(request, agent), body.topic, tenants, _spec(body)
    )
    return ok(subscription_view(state))


@router.get("/api/agents/{agentId}/topics/subscriptions")
async def agent_list(
    ctx: Ctx,
    agent: Agent,
    topic: OptionalTopic = None,
    page_: PageNo = 1,
    page_size: PageSize = 20,
) -> Response:
    tenants = await agent_tenants(ctx, agent.agent_id)
    rows, total = await subs.list_subscriptions(ctx, topic, tenants, page_, page_size)
    return page([subscription_view(r) for r in rows], page=page_, page_size=page_size, total=total)


@router.get("/api/agents/{agentId}/topics/subscriptions/{name}")
async def agent_get(ctx: Ctx, agent: Agent, name: str, topic: TopicQuery) -> Response:
    tenants = await agent_tenants(ctx, agent.agent_id)
    return ok(subscription_view(await subs.get_subscription(ctx, topic, name, tenants)))


@router.delete("/api/agents/{agentId}/topics/subscriptions/{name}")
async def agent_delete(
    request: Request, ctx: Ctx, agent: Agent, name: str, topic: TopicQuery
) -> Response:
    tenants = await agent_tenants(ctx, agent.agent_id)
    sub = await subs.delete_subscription(ctx, _agent_actor(request, agent), topic, name, tenants)
    return ok({"id": sub.id, "topic": sub.topic, "name": sub.name, "deleted": True})


@router.post("/api/agents/{agentId}/topics/subscriptions/{name}/ack")
async def agent_ack(request: Request, ctx: Ctx, agent: Agent, name: str) -> Response:
    body = await read_json(request, TopicAckRequest)
    tenants = await agent_tenants(ctx, agent.agent_id)
    offsets = [(o.partition, o.offset) for o in body.offsets]
    state = await subs.ack(ctx, _agent_actor(request, agent), body.topic, name, tenants, offsets)
    return ok(subscription_view(state))


@router.post("/api/agents/{agentId}/topics/subscriptions/{name}/nack")
async def agent_nack(request: Request, ctx: Ctx, agent: Agent, name: str) -> Response:
    body = await read_json(request, TopicNackRequest)
    tenants = await agent_tenants(ctx, agent.agent_id)
    state = await subs.nack(
        ctx,
        _agent_actor(request, agent),
        body.topic,
        name,
        tenants,
        body.partition,
        body.offset,
        body.reason,
    )
    return ok(subscription_view(state))
