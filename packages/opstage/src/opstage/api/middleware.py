"""Request ids, one access-log line and the HTTP metrics per request: a plain ASGI wrapper.

It sits on the heartbeat hot path, so it does the minimum: one clock read at each end, one
header appended, and (when metrics are on) one cached-counter increment and one histogram
observation labelled by the route *template*, never the raw path.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opstage.domain.ids import random_bytes

if TYPE_CHECKING:
    from opstage.api.prometheus import HttpMetrics

log = logging.getLogger("opstage.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestContext:
    def __init__(
        self, app: ASGIApp, *, access_log: bool, metrics: HttpMetrics | None = None
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else random_bytes(8).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route, status, duration)
            if self.access_log:
                log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "route": route,
                        "duration_ms": round(duration * 1000, 2),
                    },
                )
