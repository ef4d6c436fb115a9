"""Durable subscriptions over HTTP (ADR 0015): admin and agent CRUD with RBAC and tenant 404s,
ack (commit) and lag, a durable SSE stream resuming from its committed offsets, redelivery of
what was not acked, DLQ by nack and by max deliveries (with origin headers), audit, and an ack
mode or ack timeout refused rather than ignored."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, register
from opstage_testing.server import ServerProcess

from ..support.topics import TOPICS, messages, new_topic, published, subscription


@pytest.fixture
def agent(new_agent: Callable[..., AgentClient]) -> AgentClient:
    return new_agent()


def _subs(agent: AgentClient) -> str:
    return f"/api/agents/{agent.agent_id}/topics/subscriptions"


def _create(agent: AgentClient, topic: str, **body: Any) -> dict[str, Any]:
    name = body.pop("name", "d-" + secrets.token_hex(4))
    r = agent.post(_subs(agent), json={"topic": topic, "name": name, **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _ack(agent: AgentClient, topic: str, name: str, *offsets: tuple[int, int]) -> Any:
    body = {"topic": topic, "offsets": [{"partition": p, "offset": o} for p, o in offsets]}
    return agent.post(f"{_subs(agent)}/{name}/ack", json=body)


def _data(agent: AgentClient, method: str, url: str, **kw: Any) -> Any:
    r = agent.request(method, url, **kw)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _err(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


def test_ack_commits_lag_falls_and_a_durable_stream_resumes_from_the_commit(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin, partitions=1)["topic"]
    published(agent, topic, "before")  # a durable subscription from=latest does not see it
    sub = _create(agent, topic)
    assert (sub["lag"], sub["partitions"]) == (
        0,
        [{"partition": 0, "committed": 1, "end": 1, "lag": 0}],
    )
    for i in range(4):
        published(agent, topic, i)
    got = _data(agent, "GET", f"{_subs(agent)}/{sub['name']}", params={"topic": topic})
    assert got["lag"] == 4 and got["partitions"][0]["end"] == 5
    scrape = admin.get("/metrics").text
    labels = f'partition="0",subscription="{sub["name"]}",topic="{topic}"'
    series = f"opstage_topic_subscription_lag{{{labels}}}"
    assert f"{series} 4.0" in scrape, scrape[-2000:]
    with subscription(agent, sub["name"], topic, "earliest") as sse:
        first = messages(sse, 2)
    assert [f.data["payload"] for f in first] == [0, 1]
    r = _ack(agent, topic, sub["name"], (0, first[0].data["offset"]))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["lag"] == 3  # acked offset 1: committed 2
    # The stream starts at the commit: "1" comes again (delivered, not acked), nothing before.
    with subscription(agent, sub["name"], topic, "latest") as sse:
        again = messages(sse, 3)
    assert [f.data["payload"] for f in again] == [1, 2, 3]
    # Cumulative and never backwards; an offset never given is refused.
    assert _ack(agent, topic, sub["name"], (0, 4), (0, 2)).json()["data"]["lag"] == 0
    assert _ack(agent, topic, sub["name"], (0, 1)).json()["data"]["lag"] == 0
    _err(_ack(agent, topic, sub["name"], (0, 99)), 422, "VALIDATION_FAILED")
    _err(_ack(agent, topic, sub["name"], (5, 0)), 422, "VALIDATION_FAILED")
    _err(_ack(agent, topic, "nobody"), 422, "VALIDATION_FAILED")  # no offsets
    _err(_ack(agent, topic, "nobody", (0, 0)), 404, "TOPIC_SUBSCRIPTION_NOT_FOUND")


def test_max_deliveries_and_nack_dead_letter_with_origin_headers(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin, partitions=1)["topic"]
    dlq = new_topic(admin, partitions=1)["topic"]
    sub = _create(agent, topic, maxDeliveries=2, dlqTopic=dlq, **{"from": "earliest"})
    published(agent, topic, "poison", key="k1", headers={"trace": "t"})
    published(agent, topic, "fine")
    for _ in range(2):  # delivered twice, never acked
        with subscription(agent, sub["name"], topic) as sse:
            assert messages(sse, 1)[0].data["payload"] == "poison"
    with subscription(agent, sub["name"], topic) as sse:  # the third start: it is dead-lettered
        (frame,) = messages(sse, 1)
    assert frame.data["payload"] == "fine"
    with subscription(agent, "dlq-reader", dlq, "earliest") as sse:
        (dead,) = messages(sse, 1)
    assert dead.data["payload"] == "poison" and dead.data["key"] == "k1"
    assert dead.data["headers"] == {
        "trace": "t",
        "opstage.origin.topic": topic,
        "opstage.origin.partition": "0",
        "opstage.origin.offset": "0",
        "opstage.origin.subscription": sub["name"],
        "opstage.dlq.reason": "max_deliveries",
        "opstage.delivery.count": "2",
    }
    # nack: "fine" goes to the DLQ too, and the subscription moves past it.
    r = agent.post(
        f"{_subs(agent)}/{sub['name']}/nack",
        json={"topic": topic, "partition": 0, "offset": 1, "reason": "bad total"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["lag"] == 0
    with subscription(agent, "dlq-reader-2", dlq, "earliest") as sse:
        both = messages(sse, 2)
    assert both[1].data["payload"] == "fine"
    assert both[1].data["headers"]["opstage.dlq.reason"] == "nack: bad total"
    rows = admin.data(
        "GET", "/api/admin/audit-events", params={"targetId": sub["id"], "pageSize": 100}
    )
    assert sorted(r["action"] for r in rows) == [
        "topic.subscription.created",
        "topic.subscription.dlq",
        "topic.subscription.dlq",
    ]
    # Without a DLQ, a nack is refused (and nothing moves).
    plain = _create(agent, topic)
    r = agent.post(
        f"{_subs(agent)}/{plain['name']}/nack", json={"topic": topic, "partition": 0, "offset": 0}
    )
    _err(r, 409, "TOPIC_SUBSCRIPTION_NO_DLQ")


def test_an_ack_mode_or_timeout_is_refused_never_ignored(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin)["topic"]
    for extra in ({"ackMode": "manual"}, {"ackTimeoutMs": 30000}, {"ackMode": "auto"}):
        r = agent.post(_subs(agent), json={"topic": topic, "name": "x", **extra})
        _err(r, 422, "VALIDATION_FAILED")
    _err(
        agent.post(_subs(agent), json={"topic": topic, "name": "x", "maxDeliveries": 3}),
        422,
        "VALIDATION_FAILED",
    )
    _err(agent.post(_subs(agent), json={"topic": topic, "name": "a/b"}), 422, "VALIDATION_FAILED")
    _err(agent.post(_subs(agent), json={"name": "x"}), 422, "VALIDATION_FAILED")
    _create(agent, topic, name="twice")
    _err(
        agent.post(_subs(agent), json={"topic": topic, "name": "twice"}),
        409,
        "TOPIC_SUBSCRIPTION_EXISTS",
    )


def test_admin_crud_rbac_and_tenant_isolation(
    server: ServerProcess, admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin)["topic"]
    base = f"{TOPICS}/{topic}/subscriptions"
    made = admin.data("POST", base, json={"name": "ops-view"})
    assert made["topic"] == topic and made["tenant"] == "default"
    vname, vpw = admin.create_user("viewer")
    with AdminClient(server.url) as viewer:
        viewer.login(vname, vpw)
        assert [s["name"] for s in viewer.data("GET", base)] == ["ops-view"]
        assert viewer.data("GET", f"{base}/ops-view")["lag"] == 0
        _err(viewer.post(base, json={"name": "v"}), 403, "FORBIDDEN")
        _err(viewer.delete(f"{base}/ops-view"), 403, "FORBIDDEN")
    # The agent of the same tenant sees it; an agent of another tenant gets 404 everywhere.
    assert "ops-view" in [
        s["name"] for s in _data(agent, "GET", _subs(agent), params={"topic": topic})
    ]
    other_tenant = "o" + secrets.token_hex(3)
    raw = admin.data(
        "POST", "/api/admin/registration-tokens", json={"topicTenants": [other_tenant]}
    )
    outsider = register(server.url, raw["rawToken"], "out-" + secrets.token_hex(4))
    out = _subs(outsider)
    _err(outsider.get(f"{out}/ops-view", params={"topic": topic}), 404, "TOPIC_NOT_FOUND")
    _err(outsider.delete(f"{out}/ops-view", params={"topic": topic}), 404, "TOPIC_NOT_FOUND")
    _err(outsider.post(out, json={"topic": topic, "name": "mine"}), 404, "TOPIC_NOT_FOUND")
    _err(_ack(outsider, topic, "ops-view", (0, 0)), 404, "TOPIC_NOT_FOUND")
    assert _data(outsider, "GET", out) == []
    # A DLQ in another tenant is refused like a topic that does not exist.
    foreign = new_topic(admin, tenant=other_tenant)["topic"]
    r = admin.post(base, json={"name": "x", "dlqTopic": foreign})
    _err(r, 404, "TOPIC_NOT_FOUND")
    admin.data("DELETE", f"{base}/ops-view")
    _err(admin.get(f"{base}/ops-view"), 404, "TOPIC_SUBSCRIPTION_NOT_FOUND")
    # Deleting the topic deletes its subscriptions.
    _create(agent, topic, name="goes-with-topic")
    admin.data("DELETE", f"{TOPICS}/{topic}")
    new_topic(admin, namespace=topic.split(".")[0], name=topic.split(".")[2])
    assert _data(agent, "GET", _subs(agent), params={"topic": topic}) == []
