"""Topic bus endpoints (docs/topics.md maps them to the Agentic Bus seed's ``/v1/bus/…``).

Admin (session; viewer+ lists, operator+ changes):
  ``POST /api/admin/topics`` · ``GET /api/admin/topics`` · ``DELETE /api/admin/topics/{topic}``
Agents (agent token; within the tenants their registration grants):
  ``GET /api/agents/{agentId}/topics`` · ``POST /api/agents/{agentId}/topics/publish`` ·
  ``GET /api/agents/{agentId}/topics/subscribe/{subscriptionId}?topic=…&from=…`` (SSE)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from opstage.api.deps import Agent, Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok, page
from opstage.api.models import TopicCreateRequest, TopicPublishRequest
from opstage.api.queries import PageNo, PageSize
from opstage.api.rbac import READ
from opstage.app import topics
from opstage.app.auth import SessionInfo
from opstage.app.context import AppContext
from opstage.app.topic_ports import EngineTopicMissing, TopicEngineError
from opstage.domain.errors import DomainError, ValidationFailed
from opstage.domain.timeutil import iso
from opstage.domain.topics import (
    Delivered,
    Gap,
    ResumePoint,
    Topic,
    TopicFilter,
    fragment_problem,
    parse_event_id,
)

router = APIRouter(tags=["Topics"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Writer = Annotated[SessionInfo, Depends(require("topics:write"))]
Fragment = Annotated[str | None, Query(max_length=80)]
SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
IDEMPOTENCY_KEY_MAX = 200
RETRY_MS = 3000


def topic_view(t: Topic) -> dict[str, Any]:
    return {
        "id": t.id,
        "topic": t.wire,
        "namespace": t.namespace,
        "tenant": t.tenant,
        "name": t.name,
        "partitions": t.partitions,
        "replication": t.replication,
        "retentionMs": t.retention_ms,
        "description": t.description,
        "labels": t.labels,
        "auditPublish": t.audit_publish,
        "createdAt": iso(t.created_at),
    }


def _filter(namespace: str | None, tenant: str | None, prefix: str | None) -> TopicFilter:
    issues = [
        {"path": path, "message": problem}
        for path, value in (("namespace", namespace), ("tenant", tenant))
        if value is not None and (problem := fragment_problem(value))
    ]
    if issues:
        raise ValidationFailed("Query validation failed.", issues)
    return TopicFilter(namespace, (tenant,) if tenant is not None else None, prefix or None)


@router.post("/api/admin/topics")
async def create_topic(request: Request, ctx: Ctx, session: Writer) -> Response:
    body = await read_json(request, TopicCreateRequest)
    spec = topics.TopicSpec(
        body.namespace,
        body.tenant,
        body.name,
        body.partitions,
        body.replication,
        body.retention_ms,
        body.description,
        body.labels,
        body.audit_publish,
    )
    topic = await topics.create_topic(ctx, admin_actor(request, session), spec)
    return ok(topic_view(topic))


@router.get("/api/admin/topics")
async def list_topics(
    ctx: Ctx,
    _: Reader,
    namespace: Fragment = None,
    tenant: Fragment = None,
    name_prefix: Annotated[str | None, Query(alias="namePrefix", max_length=80)] = None,
    page_: PageNo = 1,
    page_size: PageSize = 20,
) -> Response:
    where = _filter(namespace, tenant, name_prefix)
    rows, total = await topics.list_topics(ctx, where, page_, page_size)
    return page([topic_view(t) for t in rows], page=page_, page_size=page_size, total=total)


@router.get("/api/admin/topics/{topic}")
async def get_topic(ctx: Ctx, _: Reader, topic: str) -> Response:
    return ok(topic_view(await topics.get_topic(ctx, topic, None)))


@router.delete("/api/admin/topics/{topic}")
async def delete_topic(request: Request, ctx: Ctx, session: Writer, topic: str) -> Response:
    row, engine_deleted = await topics.delete_topic(ctx, admin_actor(request, session), topic)
    return ok({**topic_view(row), "engineDeleted": engine_deleted})


@router.get("/api/agents/{agentId}/topics")
async def agent_list_topics(
    ctx: Ctx,
    agent: Agent,
    namespace: Fragment = None,
    tenant: Fragment = None,
    name_prefix: Annotated[str | None, Query(alias="namePrefix", max_length=80)] = None,
    page_: PageNo = 1,
    page_size: PageSize = 20,
) -> Response:
    where = _filter(namespace, tenant, name_prefix)
    rows, total = await topics.list_agent_topics(ctx, agent.agent_id, where, page_, page_size)
    return page([topic_view(t) for t in rows], page=page_, page_size=page_size, total=total)


async def publish_message(
    ctx: AppContext, agent_id: str, body: TopicPublishRequest, idem: str | None
) -> tuple[dict[str, Any], bool]:
    """The publish's receipt (wire shape) and whether it replays an earlier one."""
    if "payload" not in body.model_fields_set:
        raise ValidationFailed(
            "Request body validation failed.", [{"path": "payload", "message": "Field required"}]
        )
    if idem is not None and not (0 < len(idem) <= IDEMPOTENCY_KEY_MAX):
        raise ValidationFailed(
            "Idempotency-Key is invalid.",
            [{"path": "Idempotency-Key", "message": f"1-{IDEMPOTENCY_KEY_MAX} characters"}],
        )
    wire = topics.resolve_name(body.topic, body.namespace, body.tenant, body.name)
    receipt = await topics.publish(
        ctx,
        agent_id,
        wire,
        body.payload,
        key=body.key,
        headers=body.headers,
        idempotency_key=idem,
    )
    data = {
        "topic": receipt.topic,
        "partition": receipt.partition,
        "offset": receipt.offset,
        "produced_at": iso(receipt.produced_at),
    }
    return data, receipt.replayed


def message_frame(m: Delivered) -> bytes:
    data: dict[str, Any] = {"topic": m.topic}
    if m.key is not None:
        data["key"] = m.key
    data["payload"] = m.payload
    if m.headers:
        data["headers"] = m.headers
    data.update(partition=m.partition, offset=m.offset, timestamp=iso(m.timestamp))
    return (
        b"id: %d:%d\nevent: bus.message\ndata: " % (m.partition, m.offset)
        + orjson.dumps(data)
        + b"\n\n"
    )


def gap_frame(g: Gap) -> bytes:
    """No ``id``: the stream's last id stays the last message delivered."""
    data = {
        "topic": g.topic,
        "partition": g.partition,
        "fromOffset": g.requested,
        "firstAvailableOffset": g.first_available,
        "reason": g.reason,
    }
    return b"event: bus.gap\ndata: " + orjson.dumps(data) + b"\n\n"


def error_frame(code: str, message: str) -> bytes:
    return b"event: bus.error\ndata: " + orjson.dumps({"code": code, "message": message}) + b"\n\n"


def _resume(request: Request) -> ResumePoint | None:
    header = request.headers.get("last-event-id")
    if header is None or not header.strip():
        return None
    point = parse_event_id(header)
    if point is None:
        raise ValidationFailed(
            "Last-Event-ID must be an id this stream sent.",
            [{"path": "Last-Event-ID", "message": "must be partition:offset"}],
        )
    return point


@router.get("/api/agents/{agentId}/topics/subscribe/{subscriptionId}")
async def subscribe(
    request: Request,
    ctx: Ctx,
    agent: Agent,
    subscriptionId: str,
    topic: Annotated[str, Query(min_length=1, max_length=242)],
    start: Annotated[Literal["earliest", "latest"], Query(alias="from")] = "latest",
) -> StreamingResponse:
    if SUBSCRIPTION_ID.fullmatch(subscriptionId) is None:
        raise ValidationFailed(
            "Subscription id validation failed.",
            [{"path": "subscriptionId", "message": "1-200 of A-Z, a-z, 0-9, '_', '.', ':', '-'"}],
        )
    resume = _resume(request)
    stream = await topics.subscribe(ctx, agent.agent_id, topic, subscriptionId, start, resume)

    async def frames() -> AsyncIterator[bytes]:
        yield b"retry: %d\n\n" % RETRY_MS
        try:
            async for item in stream:
                if item is None:
                    yield b": keep-alive\n\n"
                elif isinstance(item, Gap):
                    yield gap_frame(item)
                else:
                    yield message_frame(item)
        except DomainError as exc:
            yield error_frame(exc.code, exc.message)
        except EngineTopicMissing:
            yield error_frame("TOPIC_NOT_FOUND", "The topic was deleted.")
        except TopicEngineError:
            yield error_frame("TOPIC_ENGINE_UNAVAILABLE", "The topic engine failed; reconnect.")
        finally:
            await stream.aclose()  # leave the consumer group: its partitions go to the others

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
