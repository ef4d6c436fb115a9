"""Two nodes on one PostgreSQL database: what one commits wakes the long-polls of the other.

Without a cross-node signal a long-poll on node B finds a command created on node A only at
its periodic recheck (``LONG_POLL_RECHECK_SECONDS``, 5 s); with LISTEN/NOTIFY it is
delivered as it commits (store/pg_wake.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import ENGINE

pytestmark = pytest.mark.skipif(
    ENGINE != "postgres",
    reason="two nodes need a shared PostgreSQL database: this runs in the PostgreSQL pass",
)


@pytest.fixture
def two_nodes(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    url = database_factory(tmp_path / "a")
    assert url is not None
    first = ServerProcess(tmp_path / "a", url, {}).start()
    second = ServerProcess(tmp_path / "b", url, {}).start()
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_command_created_on_one_node_wakes_a_long_poll_on_another(
    two_nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_nodes
    with AdminClient(a.url) as admin_a, AdminClient(b.url) as admin_b:
        admin_a.login()
        admin_b.login()
        agent = register(a.url, admin_a.create_token(), "cross-node")
        agent.report(service("svc-cross", action("ping")))
        service_id = admin_a.data("GET", "/api/admin/capsule-services")[0]["id"]
        on_b = type(agent)(b.url, agent.agent_id, agent.token)

        delivered: list[tuple[float, list[dict[str, Any]]]] = []

        def poll() -> None:
            commands = on_b.poll(wait=15)
            delivered.append((time.perf_counter(), commands))

        poller = threading.Thread(target=poll)
        poller.start()

        def parked() -> bool:
            runtime = admin_b.data("GET", "/api/admin/diagnostics/runtime")
            return bool(runtime["waiters"]["waiting"] >= 1)

        _until(parked)  # the poll has read the database and waits on node B
        started = time.perf_counter()
        cmd = admin_a.data(
            "POST", f"/api/admin/capsule-services/{service_id}/actions/ping", json={}
        )
        poller.join(20)
        on_b.close()
        heard = admin_b.data("GET", "/api/admin/diagnostics/runtime")["waiters"]["crossNode"]
    assert delivered, "the long-poll on node B never answered"
    answered_at, commands = delivered[0]
    assert [c["id"] for c in commands] == [cmd["id"]]
    assert answered_at - started < 2.0, "woken by the periodic recheck, not by the commit"
    assert heard["connected"] is True and heard["received"] >= 1 and heard["reconnects"] == 0


def test_an_agent_disabled_or_re_registered_on_one_node_is_refused_at_once_by_another(
    two_nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    """Node B caches an agent's identity (app/agents.py, 60 s); node A's change must reach it
    as it commits (ADR 0016), or B would go on serving a disabled agent or a replaced token.
    The notification reaches B a few milliseconds after A answers: allow B one second."""
    a, b = two_nodes
    with AdminClient(a.url) as admin_a:
        admin_a.login()
        first = register(a.url, admin_a.create_token(), "cross-auth")
        on_b = type(first)(b.url, first.agent_id, first.token)

        def beat_on_b() -> httpx.Response:
            return on_b.post(f"/api/agents/{first.agent_id}/heartbeat", json={})

        def answers(status: int, code: str | None = None) -> Callable[[], bool]:
            def check() -> bool:
                r = beat_on_b()
                return r.status_code == status and (
                    code is None or r.json()["error"]["code"] == code
                )

            return check

        assert beat_on_b().status_code == 200  # node B has it cached now
        admin_a.data("POST", f"/api/admin/agents/{first.agent_id}/disable")
        _until(answers(403, "AGENT_DISABLED"), timeout=1.0)
        admin_a.data("POST", f"/api/admin/agents/{first.agent_id}/enable")
        _until(answers(200), timeout=1.0)
        # Re-registered on node A (a new token): the old one is refused on node B at once.
        second = register(a.url, admin_a.create_token(), "cross-auth")
        assert second.agent_id == first.agent_id
        _until(answers(401, "AGENT_TOKEN_REVOKED"), timeout=1.0)
        on_b.close()
