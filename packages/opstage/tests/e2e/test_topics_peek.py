"""The admin peek at a topic's messages (``GET /api/admin/topics/{topic}/messages``): partition
bounds, the latest messages, paging a partition by offset to its end, a DLQ's origin headers,
bad input as 422, an unknown topic as 404, viewers allowed, no session refused — and nothing
consumed (a durable subscription's lag is unchanged by a peek)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient
from opstage_testing.server import ServerProcess

from ..support.topics import TOPICS, new_topic, published


@pytest.fixture
def agent(new_agent: Callable[..., AgentClient]) -> AgentClient:
    return new_agent()


def _peek(client: AdminClient, topic: str, **params: Any) -> Any:
    return client.data("GET", f"{TOPICS}/{topic}/messages", params=params)


def _err(r: Any, status: int, code: str, path: str | None = None) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    if path is not None:
        assert path in [i["path"] for i in error["details"]["issues"]], error


def test_latest_and_paging_a_partition_to_its_end(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin, partitions=1)["topic"]
    empty = _peek(admin, topic)
    assert empty["topic"] == topic and empty["messages"] == [] and empty["nextFrom"] is None
    assert empty["partitions"] == [
        {"partition": 0, "firstOffset": 0, "endOffset": 0, "messages": 0}
    ]
    for n in range(5):
        published(agent, topic, {"n": n}, key="k", headers={"trace": f"t{n}"})

    got = _peek(admin, topic, limit=3)
    assert [m["offset"] for m in got["messages"]] == [2, 3, 4]
    assert got["partitions"] == [{"partition": 0, "firstOffset": 0, "endOffset": 5, "messages": 5}]
    last = got["messages"][-1]
    assert (last["payload"], last["key"], last["headers"]) == ({"n": 4}, "k", {"trace": "t4"})
    assert last["partition"] == 0 and last["timestamp"].endswith("Z")
    assert [m["offset"] for m in _peek(admin, topic, partition=0, limit=2)["messages"]] == [3, 4]

    first = _peek(admin, topic, partition=0, **{"from": 0}, limit=2)
    assert [m["offset"] for m in first["messages"]] == [0, 1] and first["nextFrom"] == 2
    tail = _peek(admin, topic, partition=0, **{"from": 3}, limit=2)
    assert [m["offset"] for m in tail["messages"]] == [3, 4] and tail["nextFrom"] is None
    for start in (5, 999):  # at and past the end: nothing, and nothing to ask next
        past = _peek(admin, topic, partition=0, **{"from": start})
        assert past["messages"] == [] and past["nextFrom"] is None


def test_latest_across_partitions_and_a_peek_consumes_nothing(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin, partitions=3)["topic"]
    sub = admin.data("POST", f"{TOPICS}/{topic}/subscriptions", json={"name": "watch"})
    receipts = [published(agent, topic, n, key=f"key-{n}") for n in range(9)]
    got = _peek(admin, topic, limit=100)
    assert sorted(m["payload"] for m in got["messages"]) == list(range(9))
    assert sum(p["messages"] for p in got["partitions"]) == 9
    assert [p["partition"] for p in got["partitions"]] == [0, 1, 2]
    assert {(m["partition"], m["offset"]) for m in got["messages"]} == {
        (r["partition"], r["offset"]) for r in receipts
    }
    assert len(_peek(admin, topic, limit=4)["messages"]) == 4
    again = admin.data("GET", f"{TOPICS}/{topic}/subscriptions/{sub['name']}")
    assert again["lag"] == 9


def test_a_dlq_shows_its_origin_headers(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin, partitions=1)["topic"]
    dlq = new_topic(admin, partitions=1)["topic"]
    sub = admin.data("POST", f"{TOPICS}/{topic}/subscriptions", json={"name": "s", "dlqTopic": dlq})
    published(agent, topic, "poison", key="k1")
    r = agent.post(
        f"/api/agents/{agent.agent_id}/topics/subscriptions/{sub['name']}/nack",
        json={"topic": topic, "partition": 0, "offset": 0, "reason": "bad"},
    )
    assert r.status_code == 200, r.text
    (dead,) = _peek(admin, dlq)["messages"]
    assert dead["payload"] == "poison" and dead["key"] == "k1"
    assert dead["headers"]["opstage.origin.topic"] == topic
    assert dead["headers"]["opstage.origin.offset"] == "0"
    assert dead["headers"]["opstage.dlq.reason"] == "nack: bad"


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"partition": 3}, "partition"),  # the topic has 0-2
        ({"partition": 64}, "partition"),
        ({"partition": -1}, "partition"),
        ({"partition": "x"}, "partition"),
        ({"from": 0}, "from"),  # an offset needs a partition
        ({"partition": 0, "from": -1}, "from"),
        ({"partition": 0, "from": 2**63}, "from"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_bad_input_is_422_naming_the_parameter(
    admin: AdminClient, params: dict[str, Any], path: str
) -> None:
    topic = new_topic(admin, partitions=3)["topic"]
    r = admin.get(f"{TOPICS}/{topic}/messages", params=params)
    _err(r, 422, "VALIDATION_FAILED", path)


def test_unknown_topic_404_viewer_reads_and_no_session_is_401(
    server: ServerProcess, admin: AdminClient, anon: AdminClient
) -> None:
    for ghost in ("ghost.default.none", "no-dots", "a.b.c.d"):
        _err(admin.get(f"{TOPICS}/{ghost}/messages"), 404, "TOPIC_NOT_FOUND")
    topic = new_topic(admin)["topic"]
    _err(anon.get(f"{TOPICS}/{topic}/messages"), 401, "UNAUTHORIZED")
    name, password = admin.create_user("viewer")
    with AdminClient(server.url) as viewer:
        viewer.login(name, password)
        assert _peek(viewer, topic)["topic"] == topic
