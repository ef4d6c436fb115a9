"""Issue 15, A5: connections that stall while sending their request are closed in time.

Raw sockets against the real server process: nothing sent, half a request head, half a
declared body. Each must be closed within the configured deadline (408 when a request had
begun), while a long-poll and a slow-but-complete request keep working.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from opstage_testing.clients import AdminClient, register

from ..conftest import ServerFactory

DEADLINE = 1.5  # both read deadlines of the server under test
SLACK = 3.0  # scheduling on a loaded machine


def _open(url: str, data: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (seconds from now)."""
    began = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return received, float("inf")
    finally:
        sock.close()
    return received, time.monotonic() - began


STALLS = {
    "nothing": b"",
    "half a request line": b"GET /api/system/hea",
    "half the headers": b"GET /api/system/health HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n",
    "half a body": (
        b"POST /api/admin/auth/login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        b'{"username": "adm'
    ),
    "half a heartbeat": (
        b"POST /api/agents/agt_x/heartbeat HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer opstage_agt_x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{"
    ),
}


@pytest.fixture
def strict_server(make_server: ServerFactory) -> str:
    srv = make_server(
        OPSTAGE_HTTP_HEADER_TIMEOUT_SECONDS=str(DEADLINE),
        OPSTAGE_HTTP_BODY_TIMEOUT_SECONDS=str(DEADLINE),
        OPSTAGE_ACCESS_LOG="false",
    )
    return srv.url


def test_stalled_requests_are_closed_within_the_deadline(strict_server: str) -> None:
    # Many at once, as the issue measured (40 connections): each closed, none left behind.
    socks = [(name, _open(strict_server, data)) for name, data in STALLS.items() for _ in range(8)]
    for name, sock in socks:
        received, closed_after = _read_until_closed(sock, DEADLINE + SLACK)
        assert closed_after <= DEADLINE + SLACK, f"{name}: still open"
        if name == "nothing":
            assert received == b"", "a connection that sent nothing is closed silently"
        elif name == "half a heartbeat":
            # Answered (401) before its body was read; then closed, with no second answer.
            assert received.startswith(b"HTTP/1.1 401 "), received[:80]
            assert received.count(b"HTTP/1.1 ") == 1, received
        else:
            assert received.startswith(b"HTTP/1.1 408 "), (name, received[:80])
            assert b'"code":"REQUEST_ERROR"' in received


def test_the_server_still_answers_after_stalled_clients(strict_server: str) -> None:
    socks = [_open(strict_server, STALLS["half a body"]) for _ in range(10)]
    with AdminClient(strict_server) as admin:
        admin.login()
        assert admin.get("/api/admin/agents").status_code == 200
    for sock in socks:
        _, closed_after = _read_until_closed(sock, DEADLINE + SLACK)
        assert closed_after <= DEADLINE + SLACK


def test_a_slow_but_steady_body_within_the_deadline_is_served(strict_server: str) -> None:
    body = b'{"username": "nobody", "password": "not-the-password"}'
    head = (
        b"POST /api/admin/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    sock = _open(strict_server, head + body[:10])
    time.sleep(DEADLINE / 3)
    sock.sendall(body[10:])
    received, _ = _read_until_closed(sock, 10)
    assert received.startswith(b"HTTP/1.1 401 "), received[:80]


def test_a_long_poll_outlives_the_read_deadlines(strict_server: str) -> None:
    with AdminClient(strict_server) as admin:
        admin.login()
        agent = register(strict_server, admin.create_token(), "long-poller")
    wait = DEADLINE * 2 + 1
    began = time.monotonic()
    assert agent.poll(wait=wait) == []
    waited = time.monotonic() - began
    assert waited >= wait - 0.5, f"the long-poll answered after {waited:.1f}s"
    # A kept-alive connection that is idle between requests is uvicorn's keep-alive timeout's
    # business; the same client's next request on it works.
    assert agent.poll() == []
    agent.close()


def test_an_event_stream_outlives_the_read_deadlines(strict_server: str) -> None:
    with AdminClient(strict_server) as admin:
        admin.login()
        cookies = dict(admin.cookies)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (
        f"GET /api/admin/events/stream HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    sock = _open(strict_server, request)
    received = bytearray()
    done = threading.Event()

    def read() -> None:
        sock.settimeout(DEADLINE * 3 + 2)
        try:
            while chunk := sock.recv(4096):
                received.extend(chunk)
        except OSError:
            pass
        done.set()

    threading.Thread(target=read, daemon=True).start()
    time.sleep(DEADLINE * 3)
    assert not done.is_set(), "the event stream was closed by a read deadline"
    assert received.startswith(b"HTTP/1.1 200 "), bytes(received[:80])
    sock.close()
