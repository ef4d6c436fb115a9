"""A peek at a topic's messages for the console (docs/topics.md): session, viewer+.

``GET /api/admin/topics/{topic}/messages?partition=&from=&limit=`` reads without consuming
(no consumer group, no commit): the topic's partition bounds and up to ``limit`` messages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from opstage.api.deps import Ctx, require
from opstage.api.envelope import ok
from opstage.api.rbac import READ
from opstage.app import topic_peek
from opstage.app.auth import SessionInfo
from opstage.domain.timeutil import iso
from opstage.domain.topics import MAX_PARTITIONS, Delivered

router = APIRouter(tags=["Topics"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
OFFSET_MAX = 2**63 - 1  # what SQLite and PostgreSQL bind; past it a 422, not a 500


def message_view(m: Delivered) -> dict[str, Any]:
    return {
        "partition": m.partition,
        "offset": m.offset,
        "key": m.key,
        "payload": m.payload,
        "headers": m.headers,
        "timestamp": iso(m.timestamp),
    }


@router.get("/api/admin/topics/{topic}/messages")
async def peek_messages(
    ctx: Ctx,
    _: Reader,
    topic: str,
    partition: Annotated[int | None, Query(ge=0, lt=MAX_PARTITIONS)] = None,
    start: Annotated[int | None, Query(alias="from", ge=0, le=OFFSET_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=topic_peek.MAX_LIMIT)] = 20,
) -> Response:
    got = await topic_peek.peek(ctx, topic, partition, start, limit)
    return ok(
        {
            "topic": got.topic.wire,
            "partitions": [
                {
                    "partition": p,
                    "firstOffset": b.first,
                    "endOffset": b.end,
                    "messages": b.end - b.first,
                }
                for p, b in sorted(got.bounds.items())
            ],
            "messages": [message_view(m) for m in got.messages],
            "nextFrom": got.next_start,
        }
    )
