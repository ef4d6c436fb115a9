"""``create_app(settings)``: the FastAPI application, built explicitly from settings."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from opstage import __version__
from opstage.api import console, errors
from opstage.api.hotpath import AgentHotPath
from opstage.api.middleware import RequestContext
from opstage.api.openapi import document
from opstage.api.prometheus import PrometheusMetrics
from opstage.api.routes import (
    agent_api,
    agents,
    audit,
    auth,
    backup,
    bus,
    commands,
    events_stream,
    hot_docs,
    maintenance,
    observability,
    services,
    system,
    tokens,
    topic_messages,
    topic_subscriptions,
    topics,
    users,
)
from opstage.runtime import BackgroundService, Runtime
from opstage.settings import Settings

log = logging.getLogger("opstage")
SWITCH_INTERVAL_SECONDS = 0.001
# Routes match in this order.
ROUTE_MODULES = (
    agent_api,
    system,
    auth,
    users,
    tokens,
    agents,
    services,
    commands,
    audit,
    bus,
    observability,
    events_stream,
    maintenance,
    backup,
    topics,
    topic_subscriptions,
    topic_messages,
    # Documentation only: api/hotpath.py answers these before FastAPI (ADR 0001). Last, so
    # that no other request pays for matching them.
    hot_docs,
)


class OpstageApi(FastAPI):
    """FastAPI with the request context and the agents' hot paths in front of its middleware.

    Agents call heartbeat, poll and bus publish thousands of times a second; through
    Starlette's stack (error, telemetry and body-limit middleware, each wrapping ``send``) a
    request paid for five layers it does not use. Here every request first meets
    ``RequestContext`` (request id, access log, metrics) and ``AgentHotPath``; everything
    else then takes FastAPI's usual way, so a 500 from a route is still rendered by
    ``ServerErrorMiddleware`` and still logged with its status here.
    """

    front: ASGIApp | None = None

    def serve_front(self, front: ASGIApp) -> None:
        self.front = front

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)


def create_app(settings: Settings, *, background: Sequence[BackgroundService] = ()) -> FastAPI:
    settings = settings.resolve_secrets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, services=background)
        app.state.runtime = runtime
        app.state.ctx = runtime.ctx
        if runtime.generated_password:
            log.warning(
                "bootstrapped the first owner; this password is shown once",
                extra={"username": settings.admin_username or "admin"},
            )
            print(
                f"\n  Opstage admin login (shown once):\n"
                f"    username: {settings.admin_username or 'admin'}\n"
                f"    password: {runtime.generated_password}\n",
                flush=True,
            )
        # Everything alive now (modules, compiled statements, settings) lives for the whole
        # process: freezing it keeps the collector's full passes from rescanning it, which
        # showed as 50-100 ms stalls in every request's tail under load (bench/README.md).
        gc.collect()
        gc.freeze()
        # The database drivers' threads (aiosqlite's, the WAL checkpointer) give the GIL up
        # for every statement and then wait for the event loop to hand it back, which a busy
        # loop does only when the switch interval (5 ms by default) runs out. At 1 ms a bus
        # batch's writer waits less for the GIL: +8% ingest at 16 publishers, median of three
        # interleaved runs (bench/README.md; ADR 0004).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL_SECONDS))
        try:
            yield
        finally:
            sys.setswitchinterval(switch)
            await runtime.stop()

    app = OpstageApi(
        title="Opstage",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # /docs and /api/docs: console.install, with local assets
        redoc_url=None,
        openapi_url="/api/openapi.json",
        # Our metrics are Prometheus (/metrics). FastAPI's native OpenTelemetry, when on,
        # looks up the global providers — environment reads — on every request: 10% of a
        # heartbeat's CPU in the bench profile, for no OpenTelemetry configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    console.install(app, settings.static_dir)
    document.install(app)
    app.state.prometheus = PrometheusMetrics() if settings.metrics_enabled else None
    metrics = app.state.prometheus.http if app.state.prometheus else None
    hot = AgentHotPath(app.behind_front)
    app.serve_front(RequestContext(hot, access_log=settings.access_log, metrics=metrics))
    return app
