"""The embedded engine is durable: every acknowledged publish survives a kill -9 of the server
and a restart on the same database, with its partition, offset and payload."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from opstage_testing.clients import AdminClient, AgentClient, register

from ..conftest import ServerFactory
from ..support.topics import new_topic, publish, subscription


def test_a_kill_9_while_publishing_loses_no_acknowledged_message(
    make_server_process: ServerFactory,
) -> None:
    srv = make_server_process()
    with AdminClient(srv.url) as admin:
        admin.login()
        topic = new_topic(admin, partitions=3)["topic"]
        token = admin.create_token()
    agent = register(srv.url, token, "dur-" + secrets.token_hex(3))
    acked: list[dict[str, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def publisher(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                r = publish(agent, topic, {"p": n, "i": i}, key=f"k{n}-{i % 5}")
            except Exception:  # the server died under the request: not acknowledged
                return
            if r.status_code != 200:
                return
            with lock:
                acked.append({**r.json()["data"], "payload": {"p": n, "i": i}})
            i += 1

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.kill()  # SIGKILL, mid-stream
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 50, f"only {len(acked)} publishes acknowledged before the kill"

    srv.start()  # the same data dir and database (on a new port)
    agent.close()
    agent = AgentClient(srv.url, agent.agent_id, agent.token)
    with subscription(agent, "after-kill", topic, "earliest", timeout=20) as sse:
        got: dict[str, Any] = {}
        want = {f"{a['partition']}:{a['offset']}" for a in acked}

        def seen(frame: Any) -> bool:
            if frame.event == "bus.message":
                got[frame.id] = frame.data["payload"]
            return want <= set(got)

        sse.until(seen, timeout=30)
    for a in acked:
        assert got[f"{a['partition']}:{a['offset']}"] == a["payload"]
    # Offsets stay dense per partition: nothing acknowledged was overwritten or skipped.
    per_partition: dict[int, list[int]] = {}
    for event_id in got:
        p, o = event_id.split(":")
        per_partition.setdefault(int(p), []).append(int(o))
    for offsets in per_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))
    # And the log goes on where it stopped.
    after = publish(agent, topic, "after", key="k0-0")
    assert after.status_code == 200, after.text
    assert (
        after.json()["data"]["offset"] == max(per_partition[after.json()["data"]["partition"]]) + 1
    )
    agent.close()
