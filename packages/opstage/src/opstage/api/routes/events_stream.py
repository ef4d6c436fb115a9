"""``GET /api/admin/events/stream``: the console's live feed of domain events (Server-Sent Events).

Wire format (``text/event-stream``)::

    retry: 3000

    id: 41
    event: ready
    data: {"lastEventId": 41}

    id: 42
    event: agent.status_changed
    data: {"id": 42, "kind": "agent.status_changed", "createdAt": "…", "data": {"agentId": …}}

    : keep-alive

Ids are rows of the durable event log, so a client that reconnects with ``Last-Event-ID`` (the
browser's ``EventSource`` does it on its own; ``?lastEventId=`` works for the first connect)
receives exactly what it missed, across server restarts. Asking for history older than the
retention window yields one ``event: gap`` (its id is where the stream resumes) before the
retained events. The session is checked again at every keep-alive; when it has ended the stream
says ``event: session-ended`` and closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from opstage.api.deps import SESSION_COOKIE, Ctx, require
from opstage.api.rbac import READ
from opstage.app.auth import SessionInfo, resolve_session
from opstage.app.event_log import Gap, KeepAlive, LoggedEvent, Ready, follow
from opstage.domain.errors import Unauthorized, Unavailable, ValidationFailed
from opstage.domain.timeutil import iso

router = APIRouter(prefix="/api/admin/events", tags=["AdminEvents"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
RETRY_MS = 3000
MAX_KINDS = 20


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _frame(event: str, data: Any, event_id: int | None = None) -> bytes:
    out = b"" if event_id is None else b"id: %d\n" % event_id
    return out + b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def event_frame(e: LoggedEvent) -> bytes:
    body = {
        "id": e.id,
        "kind": e.kind,
        "createdAt": iso(e.created_at),
        "data": {_camel(k): v for k, v in e.data.items()},
    }
    return _frame(e.kind, body, e.id)


def _resume_point(request: Request, query_value: int | None) -> int | None:
    header = request.headers.get("last-event-id")
    if header is None or not header.strip():
        return query_value
    value = header.strip()
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed(
            "Last-Event-ID must be an id this stream sent.",
            [{"path": "Last-Event-ID", "message": "must be a non-negative integer"}],
        )
    return int(value)


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    ctx: Ctx,
    _: Reader,
    # An id the database can compare with (64-bit); a larger one is 422, not a broken stream.
    last_event_id: Annotated[int | None, Query(alias="lastEventId", ge=0, le=2**63 - 1)] = None,
    kind: Annotated[list[str] | None, Query(max_length=80)] = None,
) -> StreamingResponse:
    after = _resume_point(request, last_event_id)
    kinds = tuple(k.strip() for k in (kind or []) if k.strip())
    if len(kinds) > MAX_KINDS:
        raise ValidationFailed(
            "Too many kind filters.",
            [{"path": "kind", "message": f"at most {MAX_KINDS} kind prefixes"}],
        )
    cookie = request.cookies.get(SESSION_COOKIE)

    async def frames() -> AsyncIterator[bytes]:
        yield b"retry: %d\n\n" % RETRY_MS
        try:
            async for item in follow(ctx, after, kinds=kinds):
                if isinstance(item, LoggedEvent):
                    yield event_frame(item)
                elif isinstance(item, KeepAlive):
                    try:
                        await resolve_session(ctx, cookie)
                    except Unauthorized:
                        yield _frame("session-ended", {})
                        return
                    yield b": keep-alive\n\n"
                elif isinstance(item, Ready):
                    yield _frame("ready", {"lastEventId": item.last_event_id}, item.last_event_id)
                elif isinstance(item, Gap):
                    gap = {
                        "requestedAfter": item.requested_after,
                        "resumeAfter": item.resume_after,
                        "oldestAvailable": item.oldest_available,
                        "reason": item.reason,
                        "retentionHours": ctx.settings.event_log_retention_hours,
                    }
                    yield _frame("gap", gap, item.resume_after)
        except Unavailable:
            # The database is busy or gone: end the stream; the client reconnects and resumes.
            return

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
