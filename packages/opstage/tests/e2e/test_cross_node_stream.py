"""Two nodes on one PostgreSQL database: a console's live stream on node B shows what node A
commits at once (ADR 0016), through PostgreSQL's wake-ups or, configured, a NATS relay.

Without a push, node B finds node A's events only when its stream re-reads the event log
(``OPSTAGE_EVENT_STREAM_POLL_SECONDS``, 2 s): about a second on average. Each sample is timed
from just before node A is asked to create a registration token until node B's stream has the
``registration_token.changed`` event of that token.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient
from opstage_testing.nats import NatsServer
from opstage_testing.server import ServerProcess
from opstage_testing.sse import open_stream

from ..conftest import ENGINE

pytestmark = pytest.mark.skipif(
    ENGINE != "postgres",
    reason="two nodes need a shared PostgreSQL database: this runs in the PostgreSQL pass",
)

SAMPLES = 20
# Measured p50 12-74 ms (the issue asks for under 100 ms) on a 2-core machine shared with other
# test runs; the bounds are looser so that a busier machine does not fail them, and still far
# from the re-read's path (p50 about 1-2 s: see the control test).
FAST_P50 = 0.200
FAST_MAX = 1.5  # one scheduling hiccup on a busy machine; the re-read waits up to 2 s


@pytest.fixture
def nodes(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> Iterator[Callable[..., ServerProcess]]:
    url = database_factory(tmp_path / "db")
    assert url is not None
    started: list[ServerProcess] = []

    def node(name: str, **env: str) -> ServerProcess:
        srv = ServerProcess(tmp_path / name, url, dict(env)).start()
        started.append(srv)
        return srv

    yield node
    for srv in started:
        srv.stop()


class StreamWatch:
    """Node B's live stream, read in a thread: when each token's event arrived."""

    def __init__(self, admin: AdminClient) -> None:
        self.admin = admin
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = False

    def run(self) -> None:
        try:
            with open_stream(self.admin, kind=["registration_token."]) as sse:
                for frame in sse:
                    now = time.perf_counter()
                    if frame.event == "ready":
                        self.ready.set()
                    elif frame.event == "registration_token.changed":
                        self.seen.setdefault(frame.data["data"]["tokenId"], now)
                    if self.stop:
                        return
        except httpx.HTTPError:
            if not self.stop:  # closed under it at the end of the test: expected
                raise


@contextmanager
def watching(url: str) -> Iterator[StreamWatch]:
    with AdminClient(url) as admin:
        admin.login()
        watch = StreamWatch(admin)
        thread = threading.Thread(target=watch.run, daemon=True)
        thread.start()
        assert watch.ready.wait(10), "node B's stream never became ready"
        try:
            yield watch
        finally:
            watch.stop = True


def delays(source: AdminClient, watch: StreamWatch, samples: int) -> list[float]:
    """Seconds from asking node A for an event until node B's stream had it, per sample."""
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        token = source.data("POST", "/api/admin/registration-tokens", json={})
        deadline = started + 5.0
        while token["id"] not in watch.seen:
            assert time.perf_counter() < deadline, "node B's stream never showed the event"
            time.sleep(0.002)
        out.append(watch.seen[token["id"]] - started)
        time.sleep(0.05)
    return out


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{label}: n={len(ms)} p50 {statistics.median(ms):.1f} ms  max {ms[-1]:.1f} ms"


def cross_node(admin: AdminClient) -> dict[str, Any]:
    state: dict[str, Any] = admin.data("GET", "/api/admin/diagnostics/runtime")["waiters"][
        "crossNode"
    ]
    return state


def assert_fast(label: str, values: list[float]) -> None:
    print(summary(label, values))
    assert statistics.median(values) < FAST_P50, summary(label, values)
    assert max(values) < FAST_MAX, summary(label, values)


def test_node_b_streams_node_a_events_at_once_through_postgresql(
    nodes: Callable[..., ServerProcess],
) -> None:
    a, b = nodes("a"), nodes("b")
    with watching(b.url) as watch, AdminClient(a.url) as admin_a:
        admin_a.login()
        assert_fast("postgres wake-up", delays(admin_a, watch, SAMPLES))
    # Node A restarts (a new process, a new origin): its events still arrive at once.
    a.stop()
    a.start()
    with watching(b.url) as watch, AdminClient(a.url) as admin_a:
        admin_a.login()
        assert_fast("after node A restarted", delays(admin_a, watch, 5))
        assert cross_node(watch.admin)["logWakeups"] >= SAMPLES + 5


def test_without_a_push_the_stream_waits_for_its_re_read(
    nodes: Callable[..., ServerProcess],
) -> None:
    """The control: the measurement above tells the push from the 2 s re-read."""
    a, b = nodes("a", OPSTAGE_EVENT_RELAY="off"), nodes("b")
    with watching(b.url) as watch, AdminClient(a.url) as admin_a:
        admin_a.login()
        values = delays(admin_a, watch, 6)
    print(summary("re-read only", values))
    assert statistics.median(values) > FAST_P50


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


def test_nats_relays_events_across_nodes_and_postgresql_covers_while_it_is_down(
    nodes: Callable[..., ServerProcess], nats_server: NatsServer
) -> None:
    env = {"OPSTAGE_EVENT_RELAY": "nats", "OPSTAGE_NATS_URL": nats_server.url}
    a, b = nodes("a", **env), nodes("b", **env)
    with (
        watching(b.url) as watch,
        AdminClient(a.url) as admin_a,
    ):
        admin_a.login()

        def relay_connected(admin: AdminClient) -> bool:
            return bool(cross_node(admin)["nats"]["connected"])

        _until(lambda: relay_connected(admin_a) and relay_connected(watch.admin))
        before = cross_node(watch.admin)
        assert_fast("nats relay", delays(admin_a, watch, SAMPLES))
        after = cross_node(watch.admin)
        # Carried by NATS alone: node A sent no PostgreSQL wake-up for them.
        assert after["nats"]["received"] - before["nats"]["received"] >= SAMPLES
        assert after["relayedEvents"] - before["relayedEvents"] >= SAMPLES
        assert after["received"] == before["received"], (before, after)
        sent = cross_node(admin_a)["nats"]
        # Node A heard its own messages on the subject and passed over them: nothing echoed.
        assert sent["published"] >= SAMPLES and sent["received"] < SAMPLES
        assert sent["duplicates"] == 0

        # NATS goes away: node A's commits go by PostgreSQL's wake-ups instead.
        nats_server.stop()
        _until(lambda: not relay_connected(admin_a))
        assert_fast("nats down, postgres wake-up", delays(admin_a, watch, 5))
        assert cross_node(watch.admin)["received"] >= after["received"] + 5

        # NATS is back: the relays reconnect on their own and carry the events again.
        nats_server.start(same_port=True)
        _until(lambda: relay_connected(admin_a) and relay_connected(watch.admin), timeout=20)
        back = cross_node(watch.admin)
        assert_fast("nats back", delays(admin_a, watch, 5))
        assert cross_node(watch.admin)["nats"]["received"] >= back["nats"]["received"] + 5


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
