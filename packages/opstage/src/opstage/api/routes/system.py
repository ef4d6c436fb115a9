"""Unauthenticated probes: liveness, readiness-with-database, version and capabilities."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from opstage.api.deps import Ctx
from opstage.api.envelope import ok
from opstage.app.system import probe_database, version_info
from opstage.domain.timeutil import iso

router = APIRouter(tags=["System"])


@router.get("/health")
async def liveness() -> Response:
    return ok({"status": "UP"})


@router.get("/api/system/health")
async def system_health(ctx: Ctx) -> Response:
    database = await probe_database(ctx)
    now = ctx.clock()
    info = version_info(ctx)
    return ok(
        {
            "status": database["status"],
            "timestamp": iso(now),
            "version": info["version"],
            "edition": "ce",
            "database": database,
            "uptimeSeconds": int((now - ctx.started_at).total_seconds()),
        },
        status=200 if database["status"] != "DOWN" else 503,
    )


@router.get("/api/system/version")
async def system_version(ctx: Ctx) -> Response:
    return ok(version_info(ctx))
