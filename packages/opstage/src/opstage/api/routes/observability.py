"""Dashboard, metrics and diagnostics for the console; Prometheus exposition at ``/metrics``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, require
from opstage.api.envelope import json_response, ok
from opstage.api.errors import error_body
from opstage.api.prometheus import CONTENT_TYPE, PrometheusMetrics
from opstage.api.rbac import READ
from opstage.api.views import audit_view, command_view
from opstage.app import observability
from opstage.app.auth import SessionInfo
from opstage.domain.errors import NotFound

router = APIRouter(tags=["AdminDashboard"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Diagnostics = Annotated[SessionInfo, Depends(require("diagnostics:read"))]


@router.get("/api/admin/dashboard/summary")
async def dashboard_summary(ctx: Ctx, _: Reader) -> Response:
    data = await observability.dashboard_summary(ctx)
    data["recentCommands"] = [command_view(c) for c in data["recentCommands"]]
    data["recentAuditEvents"] = [audit_view(e) for e in data["recentAuditEvents"]]
    return ok(data)


@router.get("/api/admin/metrics")
async def admin_metrics(ctx: Ctx, _: Reader) -> Response:
    return ok(await observability.admin_metrics(ctx))


@router.get("/api/admin/diagnostics/runtime")
async def runtime_diagnostics(ctx: Ctx, _: Diagnostics) -> Response:
    return ok(await observability.runtime_diagnostics(ctx))


def _bearer_matches(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request, ctx: Ctx) -> Response:
    """Prometheus text exposition; off with OPSTAGE_METRICS_ENABLED=false (404)."""
    metrics: PrometheusMetrics | None = getattr(request.app.state, "prometheus", None)
    if not ctx.settings.metrics_enabled or metrics is None:
        raise NotFound("Metrics are disabled.", code="NOT_FOUND")
    token = ctx.settings.metrics_token.get_secret_value() if ctx.settings.metrics_token else ""
    if token and not _bearer_matches(request.headers.get("authorization"), token):
        # The challenge header is HTTP's, so the route answers it here (ADR 0006).
        return json_response(
            error_body("UNAUTHORIZED", "A valid metrics bearer token is required."),
            401,
            headers={"WWW-Authenticate": 'Bearer realm="opstage-metrics"'},
        )
    snapshot = await observability.prometheus_snapshot(ctx)
    return Response(
        metrics.render(snapshot),
        media_type=CONTENT_TYPE,
        headers={"Cache-Control": "no-store"},
    )
