"""The agents' hot calls as documentation-only path operations (ADR 0001, ADR 0012).

``api/hotpath.py`` is the one implementation of these four operations and answers them before
FastAPI sees the request. They are registered here only so that the OpenAPI document lists them
(their parameters from the signatures, their bodies and answers from the declared models in
``api/openapi``) and so that FastAPI's router answers another method on their paths with 405, as
for every other route. The handlers are never reached; if one were (the hot path no longer
matching what it claims), the request fails as a 500 and the test that pins the hot path's
route table (tests/e2e/test_openapi_routes.py) says which.
"""

from __future__ import annotations

from typing import Annotated, NoReturn

from fastapi import APIRouter, Header, Query
from starlette.responses import Response

router = APIRouter(tags=["Agent"])


class ServedByHotPath(RuntimeError):
    """A documentation-only operation was reached: the hot path missed its own route."""


def _unreachable(name: str) -> NoReturn:
    raise ServedByHotPath(f"{name} is served by api/hotpath.py (ADR 0001)")


@router.post("/api/agents/{agentId}/heartbeat")
async def heartbeat(agentId: str) -> Response:
    _unreachable("heartbeat")


@router.get("/api/agents/{agentId}/commands")
async def poll(
    agentId: str,
    limit: Annotated[int | None, Query(description="clamped to 1..10, as the reference")] = None,
    wait_seconds: Annotated[
        float, Query(alias="waitSeconds", ge=0, description="long-poll; capped by the server")
    ] = 0,
) -> Response:
    _unreachable("poll")


@router.post("/api/agents/{agentId}/bus/events", tags=["CapsuleBus"])
async def bus_publish(
    agentId: str,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response:
    _unreachable("bus publish")


@router.post("/api/agents/{agentId}/topics/publish", tags=["Topics"])
async def topic_publish(
    agentId: str,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> Response:
    _unreachable("topic publish")
