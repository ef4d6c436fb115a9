"""Request ids, one access-log line and the HTTP metrics per request: a plain ASGI wrapper.

It sits on the heartbeat hot path, so it does the minimum: one clock read at each end, one
header appended, and (when metrics are on) one cached-counter increment and one histogram
observation labelled by the route *template*, never the raw path.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opstage.api.errors import ANSWERED, error_body, internal_error_body
from opstage.domain.bus import EXPERIMENTAL
from opstage.domain.ids import random_bytes

if TYPE_CHECKING:
    from opstage.api.prometheus import HttpMetrics

log = logging.getLogger("opstage.access")
log_errors = logging.getLogger("opstage.api")
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
        finished = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            refused = _nul_in_url(scope)
            if refused is None:
                await self.app(scope, receive, send_wrapper)
            else:
                await _answer(send_wrapper, 422, _marked(scope, refused))
        except Exception as exc:
            # Nothing reaches the ASGI server: it would log the error again and close the
            # connection (a keep-alive client's next request then meets a reset).
            await self._contain(scope, exc, request_id, send_wrapper, status, finished)
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

    @staticmethod
    async def _contain(
        scope: Scope, exc: Exception, request_id: str, send: Send, status: int, finished: bool
    ) -> None:
        """The 500 envelope for an error no handler answered.

        A response already under way (a streamed export) cannot change its status, and ending
        it cleanly would pass a truncated body off as whole: it is left unfinished, and the
        server closes the connection, which is how HTTP tells the client it broke."""
        if scope["state"].get(ANSWERED) is not exc:
            log_errors.error(
                "unhandled error (request %s)",
                request_id,
                exc_info=exc,
                extra={"request_id": request_id},
            )
        if finished or status:
            return
        with contextlib.suppress(Exception):
            await _answer(send, 500, _marked(scope, internal_error_body(request_id)))


def _marked(scope: Scope, body: dict[str, Any]) -> dict[str, Any]:
    if "/bus/" in scope["path"]:
        body["experimental"] = EXPERIMENTAL  # every bus response, as CE v0.4
    return body


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


NUL_MESSAGE = "must not contain the NUL character (%00)"


def _nul_in_url(scope: Scope) -> dict[str, Any] | None:
    """The 422 for a URL holding a NUL, which no id or filter can contain and PostgreSQL's
    text cannot even compare with (a 500 there); None for every other URL (one scan each)."""
    query: bytes = scope.get("query_string", b"")
    issues = []
    if "\x00" in scope["path"]:
        issues.append({"path": "url", "message": "the path " + NUL_MESSAGE})
    if b"%00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                issues.append({"path": name.replace("\x00", "%00"), "message": NUL_MESSAGE})
    if not issues:
        return None
    return error_body("VALIDATION_FAILED", "Request validation failed.", {"issues": issues})
