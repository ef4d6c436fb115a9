"""uvicorn's HTTP protocol with deadlines for reading a request's head and its body.

uvicorn times out only an idle keep-alive connection between requests. A client that opens a
connection and sends nothing, half a request head, or half a declared body holds the connection
(and, with a body, the request's task) for as long as it likes; a few hundred of them exhaust the
process's file descriptors. Here:

- the request head (request line and headers) must be complete within
  ``OPSTAGE_HTTP_HEADER_TIMEOUT_SECONDS`` of the connection opening, or of the first byte of a
  further request on a kept-alive connection;
- the body must be complete within ``OPSTAGE_HTTP_BODY_TIMEOUT_SECONDS`` of the head.

Past either deadline the server answers ``408`` (when a request has begun and no response has)
and closes the connection; an application still waiting for the body then receives
``http.disconnect``.
Both are deadlines on what the *client* sends: a long-poll (``waitSeconds``) or an event stream
has sent its whole request (a GET without a body) and waits on the response, which no deadline
here covers.

A request's scope also carries ``scope[CONNECTION_LOST]``: a function returning a future that
completes when the client's connection goes. A parked long-poll waits on it instead of a task
of its own reading ``receive()`` for ``http.disconnect``, which at thousands of parked polls
was ~15 of the ~90 objects each one holds for the cyclic collector to scan (ADR 0019).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
_TIMEOUT_BODY = (
    b'{"success":false,"error":{"code":"REQUEST_ERROR",'
    b'"message":"The request was not received in time."}}'
)
TIMEOUT_RESPONSE = _TIMEOUT_RESPONSE % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
CONNECTION_LOST = "opstage.connection_lost"


class DeadlineHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus the two read deadlines (set by ``with_deadlines``)."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        # A request has begun arriving and not finished: only then is a 408 owed (a connection
        # opened ahead of use, as browsers do, that never sent a byte is closed silently).
        self._begun = False
        # Made on first ask (only long-polls ask), per connection: every request on a kept-alive
        # connection shares it, so a waiter must remove its callback, never cancel it.
        self._lost: asyncio.Future[None] | None = None
        self._is_lost = False

    @classmethod
    def with_deadlines(cls, header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
        return type(
            cls.__name__,
            (cls,),
            {"header_timeout": header_timeout, "body_timeout": body_timeout},
        )

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._begun and (cycle is None or not cycle.response_started):
            self.transport.write(TIMEOUT_RESPONSE)
        # The request's task, if any, is told ``http.disconnect``; what it sends goes nowhere.
        self.transport.close()

    # --- uvicorn's hooks ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def lost(self) -> asyncio.Future[None]:
        """Completes when this connection is lost (``scope[CONNECTION_LOST]``)."""
        if self._lost is None:
            self._lost = self.loop.create_future()
            if self._is_lost:
                self._lost.set_result(None)
        return self._lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._is_lost = True
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self.cycle is None or self.cycle.response_complete:
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self.scope[CONNECTION_LOST] = self.lost  # type: ignore[literal-required]
        # A pipelined request's body is read only once the request before it is answered,
        # which may be a long-poll: only a request being served now waits for its body.
        if not self.pipeline and not self.transport.is_closing():
            self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        self._begun = False
        super().on_message_complete()
