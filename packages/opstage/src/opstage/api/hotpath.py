"""The agents' hot paths — heartbeat, command poll, bus publish — without FastAPI's machinery.

Every agent calls these every few seconds (publish: in bursts), so per-request cost decides
how many agents one node carries (bench/README.md). This ASGI layer answers exactly
``POST /api/agents/{id}/heartbeat``, ``GET /api/agents/{id}/commands`` and
``POST /api/agents/{id}/bus/events`` and ``POST /api/agents/{id}/topics/publish`` with the same
use cases, models, error codes and envelopes as the rest of the API, and passes every other
request through untouched. It is their only implementation: ``routes/hot_docs.py`` only
describes them to the OpenAPI document (ADR 0001, ADR 0012).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

import orjson
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from opstage.api.deps import body_issues
from opstage.api.errors import (
    domain_error_body,
    error_headers,
    internal_error_body,
    issues_from,
)
from opstage.api.http_protocol import CONNECTION_LOST
from opstage.api.inputs import health_report
from opstage.api.json_bounds import check_storable
from opstage.api.models import BusEventRequest, HeartbeatRequest, TopicPublishRequest
from opstage.api.routes.agent_api import timing
from opstage.api.routes.topics import publish_message
from opstage.api.views import command_view
from opstage.app import agents, bus, bus_batch, commands
from opstage.app import topics as topic_bus
from opstage.app.context import Actor, AppContext
from opstage.domain.bus import EXPERIMENTAL
from opstage.domain.errors import DomainError, ValidationFailed

log = logging.getLogger("opstage")
PREFIX = "/api/agents/"
JSON_HEADERS = [(b"content-type", b"application/json")]
EXPERIMENTAL_MARK = {"experimental": EXPERIMENTAL}  # every bus response, as CE v0.4
BUS_IDEMPOTENCY_KEY_MAX = 200  # bus_events.idempotency_key, like BusEventRequest.eventId


@dataclass(frozen=True, slots=True)
class HotRoute:
    """What the access log and the HTTP metrics read as ``scope["route"].path``."""

    method: str
    path: str


HEARTBEAT = HotRoute("POST", "/api/agents/{agentId}/heartbeat")
POLL = HotRoute("GET", "/api/agents/{agentId}/commands")
PUBLISH = HotRoute("POST", "/api/agents/{agentId}/bus/events")
TOPIC_PUBLISH = HotRoute("POST", "/api/agents/{agentId}/topics/publish")
ROUTES = (HEARTBEAT, POLL, PUBLISH, TOPIC_PUBLISH)  # everything this layer serves
Handler = Callable[[AppContext, Scope, Receive, str], Awaitable[Any]]


class AgentHotPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            parts = scope["path"][len(PREFIX) :].split("/")
            if len(parts) == 2 and parts[0]:
                method = scope["method"]
                if parts[1] == "heartbeat" and method == "POST":
                    return await self._serve(scope, receive, send, parts[0], HEARTBEAT, _beat)
                if parts[1] == "commands" and method == "GET":
                    return await self._serve(scope, receive, send, parts[0], POLL, _poll)
            topic_publish = len(parts) == 3 and parts[1:] == ["topics", "publish"]
            if topic_publish and parts[0] and scope["method"] == "POST":
                return await self._serve(
                    scope, receive, send, parts[0], TOPIC_PUBLISH, _topic_publish
                )
            publish = len(parts) == 3 and parts[1:] == ["bus", "events"]
            if publish and parts[0] and scope["method"] == "POST":
                return await self._serve(
                    scope, receive, send, parts[0], PUBLISH, _publish, EXPERIMENTAL_MARK
                )
        await self.app(scope, receive, send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        agent_id: str,
        route: HotRoute,
        handler: Handler,
        extra: dict[str, str] | None = None,
    ) -> None:
        scope["route"] = route
        ctx: AppContext = scope["app"].state.ctx
        status, headers = 200, JSON_HEADERS
        request_id = scope.get("state", {}).get("request_id")
        try:
            body = {"success": True, "data": await handler(ctx, scope, receive, agent_id)}
        except DomainError as exc:
            # The same rendering as the FastAPI routes' (errors.on_domain_error): a 5xx is
            # logged and masked, with the request id to find it by.
            status, body = domain_error_body(exc, request_id)
            headers = JSON_HEADERS + [
                (k.lower().encode(), v.encode()) for k, v in (error_headers(exc) or {}).items()
            ]
        except Exception:
            log.exception(
                "unhandled error on %s (request %s)",
                route.path,
                request_id,
                extra={"request_id": request_id},
            )
            status, body = 500, internal_error_body(request_id)
        if extra:
            body.update(extra)
        more = scope.pop("opstage.response_headers", None)
        if more and status == 200:
            headers = [*headers, *more]
        payload = orjson.dumps(body)
        # With a length the server writes the body as is, not as chunks to be reassembled.
        headers = [*headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(ctx: AppContext, scope: Scope, receive: Receive) -> bytes:
    limit = ctx.settings.request_body_max_bytes
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise DomainError("Client disconnected.", code="REQUEST_ERROR")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise DomainError(f"Request body exceeds {limit} bytes.", code="PAYLOAD_TOO_LARGE")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


M = TypeVar("M", bound=BaseModel)


def _parse(scope: Scope, raw: bytes, model: type[M]) -> M:
    """A non-empty JSON body, with the same codes as ``deps.read_json``."""
    ctype = _header(scope, b"content-type") or ""
    if ctype and "json" not in ctype.split(";")[0].lower():
        raise DomainError("Content-Type must be application/json.", code="UNSUPPORTED_MEDIA_TYPE")
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            "Request body validation failed.", issues_from(body_issues(exc))
        ) from None
    check_storable(raw, body)
    return body


async def _beat(ctx: AppContext, scope: Scope, receive: Receive, agent_id: str) -> Any:
    principal = await agents.authenticate_agent(ctx, agent_id, _header(scope, b"authorization"))
    raw = await _read_body(ctx, scope, receive)
    body = _parse(scope, raw, HeartbeatRequest) if raw.strip() else HeartbeatRequest()
    health = health_report(body.health) if body.health is not None else None
    await agents.record_contact(ctx, principal, health, body.serviceId)
    return timing(ctx)


async def _publish(ctx: AppContext, scope: Scope, receive: Receive, agent_id: str) -> Any:
    principal = await agents.authenticate_agent(ctx, agent_id, _header(scope, b"authorization"))
    if not ctx.settings.capsule_bus_enabled:  # after authentication, as the reference does
        raise bus.bus_disabled()
    raw = await _read_body(ctx, scope, receive)
    if not raw.strip():
        raise ValidationFailed(
            "Request body is required.", [{"path": "", "message": "body is required"}]
        )
    body = _parse(scope, raw, BusEventRequest)
    header_key = _header(scope, b"idempotency-key")
    # The same bound as ``eventId`` (the column holds 200): PostgreSQL refuses a longer value
    # inside the group commit, which turned one client's header into a 500.
    if header_key is not None and len(header_key) > BUS_IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed(
            "Idempotency-Key is invalid.",
            [{"path": "Idempotency-Key", "message": f"1-{BUS_IDEMPOTENCY_KEY_MAX} characters"}],
        )
    key = header_key or body.eventId
    client = scope.get("client")
    actor = Actor(
        "AGENT",
        principal.agent_id,
        client[0] if client else None,
        _header(scope, b"user-agent"),
        scope.get("state", {}).get("request_id"),
    )
    return await bus_batch.publish(ctx, actor, principal.agent_id, body.model_dump(), key)


async def _topic_publish(ctx: AppContext, scope: Scope, receive: Receive, agent_id: str) -> Any:
    principal = await agents.authenticate_agent(ctx, agent_id, _header(scope, b"authorization"))
    if ctx.topics is None:
        raise topic_bus.topic_bus_disabled()
    raw = await _read_body(ctx, scope, receive)
    if not raw.strip():
        raise ValidationFailed(
            "Request body is required.", [{"path": "", "message": "body is required"}]
        )
    body = _parse(scope, raw, TopicPublishRequest)
    data, replayed = await publish_message(
        ctx, principal.agent_id, body, _header(scope, b"idempotency-key")
    )
    if replayed:
        scope["opstage.response_headers"] = [(b"idempotent-replayed", b"true")]
    return data


async def _disconnect(receive: Receive) -> None:
    """Completes when the client hangs up (the GET's empty body is consumed on the way)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _poll(ctx: AppContext, scope: Scope, receive: Receive, agent_id: str) -> Any:
    principal = await agents.authenticate_agent(ctx, agent_id, _header(scope, b"authorization"))
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    wait = 0.0
    if "waitSeconds" in query:
        try:
            wait = float(query["waitSeconds"][0])
        except ValueError:
            wait = -1.0
        if not wait >= 0:  # also refuses NaN
            raise ValidationFailed(
                "Query validation failed.",
                [{"path": "waitSeconds", "message": "must be a number >= 0"}],
            )
    s = ctx.settings
    wait = min(wait, s.long_poll_max_seconds) if s.long_poll_enabled else 0.0
    limit = commands.clamp_poll_limit(query.get("limit"))
    gone: asyncio.Future[Any] | None = None
    reader: asyncio.Future[Any] | None = None
    if wait > 0:
        lost = scope.get(CONNECTION_LOST)  # opstage's protocol: no task per parked poll
        if lost is not None:
            gone = lost()
        else:  # another ASGI server: read ``receive()`` until it says so
            gone = reader = asyncio.ensure_future(_disconnect(receive))
    try:
        claimed = await commands.poll_commands(ctx, principal, limit, wait, gone)
    finally:
        if reader is not None:
            reader.cancel()
    return [command_view(c, for_agent=True) for c in claimed]
