"""Three nodes on one PostgreSQL database: one elected node runs each scheduled sweep (ADR 0007).

Without the election every node runs its own sweeper, so each interval is swept three times.
With it only the node holding the advisory lock sweeps; when that node is killed, PostgreSQL
ends its session and releases the lock, and another node takes the lead on its next tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opstage_testing.clients import AdminClient
from opstage_testing.server import ServerProcess

from ..conftest import ENGINE

pytestmark = pytest.mark.skipif(
    ENGINE != "postgres",
    reason="several nodes need a shared PostgreSQL database: this runs in the PostgreSQL pass",
)

INTERVAL = 2  # seconds between scheduled sweeps


@pytest.fixture
def three_nodes(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> Iterator[list[ServerProcess]]:
    url = database_factory(tmp_path / "a")
    assert url is not None
    env = {"OPSTAGE_MAINTENANCE_INTERVAL_SECONDS": str(INTERVAL)}
    nodes = [ServerProcess(tmp_path / name, url, dict(env)).start() for name in "abc"]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _maintenance(admin: AdminClient) -> dict[str, Any]:
    state: dict[str, Any] = admin.data("GET", "/api/admin/diagnostics/runtime")["maintenance"]
    return state


def _until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check`` held."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "condition not reached"
        time.sleep(0.1)
    return time.monotonic() - started


def test_one_node_leads_the_sweeps_and_another_takes_over_when_it_is_killed(
    three_nodes: list[ServerProcess],
) -> None:
    admins = [AdminClient(node.url) for node in three_nodes]
    try:
        for admin in admins:
            admin.login()

        def leaders() -> list[int]:
            return [i for i, a in enumerate(admins) if _maintenance(a)["leader"]]

        _until(lambda: len(leaders()) == 1, timeout=10)
        states = [_maintenance(a) for a in admins]
        assert {s["election"] for s in states} == {"postgres-advisory-lock"}
        (first,) = leaders()
        before = [s["sweeps"] for s in states]
        started = time.monotonic()
        time.sleep(4 * INTERVAL + 0.5)
        after = [_maintenance(a)["sweeps"] for a in admins]
        elapsed = time.monotonic() - started
        swept = [b - a for a, b in zip(before, after, strict=True)]
        # Only the leader swept, once an interval (give or take the one at each edge).
        assert leaders() == [first]
        assert [n for i, n in enumerate(swept) if i != first] == [0, 0], swept
        assert elapsed / INTERVAL - 1.5 <= swept[first] <= elapsed / INTERVAL + 1, swept

        three_nodes[first].kill()
        killed_at = time.monotonic()
        rest = [i for i in range(3) if i != first]
        swept_by = {i: _maintenance(admins[i])["sweeps"] for i in rest}

        def someone_swept() -> bool:
            return any(_maintenance(admins[i])["sweeps"] > swept_by[i] for i in rest)

        # PostgreSQL ends the dead node's session at once; a follower tries for the lead every
        # one-second tick and, once leading, sweeps straight away: within one interval.
        _until(someone_swept, timeout=INTERVAL + 1.0)
        took = time.monotonic() - killed_at
        new = [i for i in rest if _maintenance(admins[i])["leader"]]
        assert len(new) == 1, new
        (second,) = new
        assert [i for i in rest if _maintenance(admins[i])["sweeps"] > swept_by[i]] == [second]
        # And the sweeps go on, on that node alone.
        counts = {i: _maintenance(admins[i])["sweeps"] for i in rest}
        time.sleep(2 * INTERVAL + 0.5)
        later = {i: _maintenance(admins[i])["sweeps"] for i in rest}
        assert later[second] - counts[second] >= 2
        assert all(later[i] == counts[i] for i in rest if i != second)
        print(f"takeover after {took:.2f}s (interval {INTERVAL}s)")
    finally:
        for admin in admins:
            admin.close()
