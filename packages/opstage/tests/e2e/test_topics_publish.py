"""Agent publish over HTTP: the receipt, key → partition (stable, in order), round-robin
without a key, header caps and the reserved prefix, 404 for an unregistered topic (no shadow
topics), Idempotency-Key, and the error envelope for bad input."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient

from ..support.topics import TOPICS, new_topic, publish, published


def _err(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    err: dict[str, Any] = body["error"]
    return err


@pytest.fixture
def agent(new_agent: Callable[..., AgentClient]) -> AgentClient:
    return new_agent()


def test_receipt_and_offsets_in_order_per_key(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin)["topic"]
    receipts = [published(agent, topic, {"seq": i}, key="order-42") for i in range(6)]
    first = receipts[0]
    assert set(first) == {"topic", "partition", "offset", "produced_at"}
    assert first["topic"] == topic
    datetime.fromisoformat(first["produced_at"].replace("Z", "+00:00"))
    # One key, one partition: the CRC-32 of the key, modulo the topic's 3 partitions.
    assert {r["partition"] for r in receipts} == {zlib.crc32(b"order-42") % 3}
    assert [r["offset"] for r in receipts] == list(range(6))


def test_keys_spread_and_keyless_messages_go_round_robin(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin, partitions=4)["topic"]
    for key in ("a", "b", "c", "d", "e", "f", "g", "h"):
        assert published(agent, topic, 1, key=key)["partition"] == zlib.crc32(key.encode()) % 4
    keyless = [published(agent, topic, None)["partition"] for _ in range(8)]
    assert sorted(keyless) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_any_json_payload_and_the_triple_form(admin: AdminClient, agent: AgentClient) -> None:
    made = new_topic(admin)
    for payload in ({"a": [1, 2]}, [1, "x"], "text", 3.5, True, None):
        receipt = published(agent, made["topic"], payload)
        assert receipt["topic"] == made["topic"]
    r = agent.post(
        f"/api/agents/{agent.agent_id}/topics/publish",
        json={
            "namespace": made["namespace"],
            "tenant": "default",
            "name": made["name"],
            "payload": {},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["topic"] == made["topic"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"topic": "t.default.x"}, "payload"),
        ({"payload": 1}, "topic"),
        ({"topic": "nodots", "payload": 1}, "topic"),
        ({"topic": "a.b.c.d", "payload": 1}, "topic"),
        ({"topic": "t.default.x", "namespace": "t", "payload": 1}, "topic"),
        ({"namespace": "t", "tenant": "default", "payload": 1}, "topic"),
        ({"namespace": "t.x", "tenant": "default", "name": "n", "payload": 1}, "namespace"),
        ({"topic": "t.default.x", "payload": 1, "key": 5}, "key"),
        ({"topic": "t.default.x", "payload": 1, "key": ""}, "key"),
        ({"topic": "t.default.x", "payload": 1, "headers": {"a": 1}}, "headers.a"),
        ({"topic": "t.default.x", "payload": 1, "headers": ["a"]}, "headers"),
    ],
)
def test_bad_publishes_are_422(agent: AgentClient, body: dict[str, Any], path: str) -> None:
    r = agent.post(f"/api/agents/{agent.agent_id}/topics/publish", json=body)
    err = _err(r, 422, "VALIDATION_FAILED")
    assert path in [i["path"] for i in err["details"]["issues"]], err


def test_header_caps(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin)["topic"]
    at_caps = {f"h{i:02d}": "v" * 190 for i in range(20)}  # 20 headers, 3,880 bytes
    assert published(agent, topic, 1, headers=at_caps)["offset"] >= 0
    too_many = {f"h{i}": "v" for i in range(21)}
    _err(publish(agent, topic, 1, headers=too_many), 422, "VALIDATION_FAILED")
    _err(publish(agent, topic, 1, headers={"big": "v" * 257}), 422, "VALIDATION_FAILED")
    _err(publish(agent, topic, 1, headers={"k" * 257: "v"}), 422, "VALIDATION_FAILED")
    too_much = {f"h{i:02d}": "v" * 210 for i in range(20)}  # each fine, 4,240 bytes in all
    err = _err(publish(agent, topic, 1, headers=too_much), 422, "VALIDATION_FAILED")
    assert [i["path"] for i in err["details"]["issues"]] == ["headers"]


def test_reserved_header_prefix_is_400(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin)["topic"]
    for name in ("opstage.trace", "OPSTAGE.Origin"):
        err = _err(
            publish(agent, topic, 1, headers={name: "x", "ok": "y"}), 400, "TOPIC_HEADER_RESERVED"
        )
        assert err["details"]["headers"] == [name]
    assert published(agent, topic, 1, headers={"x-opstage.trace": "ok"})["offset"] == 0


def test_unregistered_and_deleted_topics_are_404_never_created(
    admin: AdminClient, agent: AgentClient
) -> None:
    _err(publish(agent, topic := "t.default.never-made", 1), 404, "TOPIC_NOT_FOUND")
    assert admin.get(f"{TOPICS}/{topic}").status_code == 404  # no shadow topic
    made = new_topic(admin)["topic"]
    published(agent, made, 1)
    admin.data("DELETE", f"{TOPICS}/{made}")
    _err(publish(agent, made, 1), 404, "TOPIC_NOT_FOUND")


def test_idempotency_key_replays_the_first_receipt(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin)["topic"]
    hdr = {"Idempotency-Key": "pub-1"}
    first = publish(agent, topic, {"n": 1}, http_headers=hdr)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again = publish(agent, topic, {"n": 1}, http_headers=hdr)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    other = published(agent, topic, {"n": 2}, http_headers={"Idempotency-Key": "pub-2"})
    assert other != first.json()["data"]
    _err(
        publish(agent, topic, 1, http_headers={"Idempotency-Key": "k" * 201}),
        422,
        "VALIDATION_FAILED",
    )


def test_concurrent_twins_with_one_idempotency_key_get_one_offset(
    admin: AdminClient, new_agent: Callable[..., AgentClient]
) -> None:
    topic = new_topic(admin, partitions=1)["topic"]
    agent = new_agent()
    out: list[dict[str, Any]] = []

    def send() -> None:
        r = publish(agent, topic, 1, key="k", http_headers={"Idempotency-Key": "twin"})
        assert r.status_code == 200, r.text
        out.append(r.json()["data"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 8 and all(r == out[0] for r in out)
    # The key is the publisher's own: another agent's same key is another message.
    assert (
        published(new_agent(), topic, 1, key="k", http_headers={"Idempotency-Key": "twin"})[
            "offset"
        ]
        == 1
    )


def test_another_tenants_topic_is_404(admin: AdminClient, agent: AgentClient) -> None:
    theirs = new_topic(admin, tenant="acme")["topic"]
    _err(publish(agent, theirs, 1), 404, "TOPIC_NOT_FOUND")
    listed = agent.get(f"/api/agents/{agent.agent_id}/topics", params={"pageSize": 100})
    assert listed.status_code == 200
    assert theirs not in [t["topic"] for t in listed.json()["data"]]
    asked = agent.get(f"/api/agents/{agent.agent_id}/topics", params={"tenant": "acme"})
    assert asked.json()["data"] == [] and asked.json()["pagination"]["total"] == 0


def test_agent_auth_is_required(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin)["topic"]
    r = agent.post(
        f"/api/agents/{agent.agent_id}/topics/publish",
        json={"topic": topic, "payload": 1},
        headers={"Authorization": "Bearer opstage_agent_wrong"},
    )
    assert r.status_code == 401, r.text
