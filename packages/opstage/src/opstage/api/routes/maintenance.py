"""Maintenance: read and change the runtime thresholds, and run the sweep now.

- ``GET /api/admin/settings/maintenance`` (every role: thresholds are not secret, and the console
  shows them) and ``PATCH`` (owner, ``settings:write``) — stored in ``system_settings``.
- ``POST /api/admin/maintenance/run`` (``maintenance:run``: owners and operators, as the
  reference) — the same run the background sweeper makes, audited ``maintenance.triggered``.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok
from opstage.api.models import Body
from opstage.api.rbac import READ
from opstage.app import maintenance_settings
from opstage.app.auth import SessionInfo
from opstage.app.maintenance import run_maintenance

router = APIRouter(tags=["AdminMaintenance"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
SettingsWriter = Annotated[SessionInfo, Depends(require("settings:write"))]
Runner = Annotated[SessionInfo, Depends(require("maintenance:run"))]


class _AnyObject(Body):
    """Only the size/content-type/JSON checks of ``read_json``; the fields are checked below."""


@router.get("/api/admin/settings/maintenance")
async def get_settings(ctx: Ctx, _: Reader) -> Response:
    return ok(await maintenance_settings.get_maintenance_settings(ctx))


@router.patch("/api/admin/settings/maintenance")
async def update_settings(request: Request, ctx: Ctx, session: SettingsWriter) -> Response:
    await read_json(request, _AnyObject)
    patch = maintenance_settings.parse_patch(orjson.loads(await request.body()))
    data = await maintenance_settings.update_maintenance_settings(
        ctx, admin_actor(request, session), patch
    )
    return ok(data)


@router.post("/api/admin/maintenance/run")
async def run_now(request: Request, ctx: Ctx, session: Runner) -> Response:
    return ok(await run_maintenance(ctx, triggered_by=admin_actor(request, session)))
