"""Topic-bus governance over HTTP: the per-agent publish quota's 429 envelope and Retry-After
on the hot path, and a ``bus.gap`` frame for a resume behind retention (pruned by the
maintenance sweep)."""

from __future__ import annotations

import secrets
import time

import pytest
from opstage_testing.clients import AdminClient, AgentClient, register

from ..conftest import TOPIC_ENGINE, ServerFactory
from ..support.topics import new_topic, publish, published, subscription


def test_a_publish_past_the_agents_quota_is_429_with_retry_after(
    make_server: ServerFactory,
) -> None:
    server = make_server(
        OPSTAGE_TOPIC_PUBLISH_RATE_PER_SECOND="0.5", OPSTAGE_TOPIC_PUBLISH_BURST="2"
    )
    with AdminClient(server.url) as admin:
        admin.login()
        topic = new_topic(admin)["topic"]
        raw = admin.data("POST", "/api/admin/registration-tokens", json={})["rawToken"]
        agent: AgentClient = register(server.url, raw, "quota-" + secrets.token_hex(4))
        other = register(
            server.url,
            admin.data("POST", "/api/admin/registration-tokens", json={})["rawToken"],
            "quota-" + secrets.token_hex(4),
        )
        published(agent, topic, 1)
        published(agent, topic, 2)
        r = publish(agent, topic, 3)
        assert r.status_code == 429, r.text
        assert r.json() == {
            "success": False,
            "error": {
                "code": "TOPIC_RATE_LIMITED",
                "message": "This agent's topic publish quota is used up; retry after the "
                "Retry-After seconds.",
            },
        }
        assert 1 <= int(r.headers["Retry-After"]) <= 2
        published(other, topic, "its own bucket")


def test_a_resume_behind_retention_gets_a_gap_frame_then_the_next_message(
    admin: AdminClient, new_agent: object
) -> None:
    if TOPIC_ENGINE != "embedded":
        # The gap itself is in the engine contract (test_topic_engine_contract.py).
        pytest.skip(
            "the maintenance sweep prunes the embedded log only: NATS prunes by max_age on "
            "its own clock, and Tansu (the test Kafka broker) does not enforce retention.ms"
        )
    agent: AgentClient = new_agent()  # type: ignore[operator]
    topic = new_topic(admin, partitions=1, retentionMs=1000)["topic"]
    for i in range(3):
        published(agent, topic, i)
    time.sleep(1.1)
    admin.data("POST", "/api/admin/maintenance/run", json={})  # prunes past 1 s
    published(agent, topic, "after")
    with subscription(agent, "late-" + secrets.token_hex(3), topic, last_event_id="0:0") as sse:
        frames = sse.until(lambda f: f.event == "bus.message")
    gaps = [f for f in frames if f.event == "bus.gap"]
    assert [g.data for g in gaps] == [
        {
            "topic": topic,
            "partition": 0,
            "fromOffset": 1,
            "firstAvailableOffset": 3,
            "reason": "retention",
        }
    ]
    assert gaps[0].id is None
    assert frames[-1].data["offset"] == 3 and frames[-1].data["payload"] == "after"
