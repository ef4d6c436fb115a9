"""Agent subscribe over HTTP (SSE) on the embedded engine: frames, ``from``, consumer groups
(same id load-balanced by partition, distinct ids broadcast), ``Last-Event-ID`` resume,
keep-alive comments, and 404/422 before the stream starts."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, register
from opstage_testing.sse import Frame, Sse

from ..conftest import ServerFactory
from ..support.topics import messages, new_topic, publish, published, subscription


@pytest.fixture
def agent(new_agent: Callable[..., AgentClient]) -> AgentClient:
    return new_agent()


def _sub() -> str:
    return "sub-" + secrets.token_hex(4)


def test_earliest_replays_the_log_in_partition_order(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin)["topic"]
    sent = [published(agent, topic, {"i": i}, key=f"k{i % 4}") for i in range(12)]
    published(agent, topic, "bare")  # no key, no headers: both fields left out
    published(agent, topic, 1, key="h", headers={"trace": "t1"})
    with subscription(agent, _sub(), topic, "earliest") as sse:
        got = messages(sse, 14)
    assert sse.retry == 3000
    by_id = {f.id: f for f in got}
    assert len(by_id) == 14, "every SSE id is unique"
    for r in sent:
        frame = by_id[f"{r['partition']}:{r['offset']}"]
        assert frame.event == "bus.message"
        assert frame.data["topic"] == topic
        assert (frame.data["partition"], frame.data["offset"]) == (r["partition"], r["offset"])
        assert frame.data["timestamp"].endswith("Z")
        assert "headers" not in frame.data
    per_partition: dict[int, list[int]] = {}
    for f in got:
        per_partition.setdefault(f.data["partition"], []).append(f.data["offset"])
    assert all(offsets == sorted(offsets) for offsets in per_partition.values())
    bare = next(f for f in got if f.data["payload"] == "bare")
    assert "key" not in bare.data and "headers" not in bare.data
    last = next(f for f in got if f.data.get("key") == "h")
    assert last.data["headers"] == {"trace": "t1"} and last.data["payload"] == 1


def test_latest_sees_only_what_comes_after_it_joined(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin)["topic"]
    published(agent, topic, "old")
    with subscription(agent, _sub(), topic, "latest") as sse:
        published(agent, topic, "new")
        (frame,) = messages(sse, 1)
    assert frame.data["payload"] == "new"


def _collect(sse: Sse, out: list[Frame], stop: threading.Event) -> None:
    try:
        for frame in sse:
            if frame.event == "bus.message":
                out.append(frame)
            if stop.is_set():
                return
    except Exception:  # the stream closed under us at the end of the test
        return


def test_one_subscription_id_is_load_balanced_by_partition(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin, partitions=4)["topic"]
    group = _sub()
    first: list[Frame] = []
    second: list[Frame] = []
    stop = threading.Event()
    with (
        subscription(agent, group, topic, "latest", timeout=30) as a,
        subscription(agent, group, topic, "latest", timeout=30) as b,
    ):
        threads = [
            threading.Thread(target=_collect, args=(a, first, stop), daemon=True),
            threading.Thread(target=_collect, args=(b, second, stop), daemon=True),
        ]
        for t in threads:
            t.start()
        sent = [published(agent, topic, i, key=f"key-{i}") for i in range(40)]
        deadline = time.monotonic() + 15
        while len(first) + len(second) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        published(agent, topic, "wake", key="key-0")  # lets a reader see the stop flag
    ids_a = {f.id for f in first}
    ids_b = {f.id for f in second}
    want = {f"{r['partition']}:{r['offset']}" for r in sent}
    assert want <= ids_a | ids_b, "every message reached the group"
    assert not (ids_a & ids_b), "no message reached both members"
    parts_a = {f.data["partition"] for f in first}
    parts_b = {f.data["partition"] for f in second}
    assert parts_a and parts_b and not (parts_a & parts_b), (parts_a, parts_b)


def test_distinct_subscription_ids_each_see_everything(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin)["topic"]
    with (
        subscription(agent, _sub(), topic, "latest") as a,
        subscription(agent, _sub(), topic, "latest") as b,
    ):
        sent = [published(agent, topic, i, key=f"k{i}") for i in range(9)]
        want = {f"{r['partition']}:{r['offset']}" for r in sent}
        assert {f.id for f in messages(a, 9)} == want
        assert {f.id for f in messages(b, 9)} == want


def test_last_event_id_resumes_after_the_last_message_seen(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin, partitions=1)["topic"]
    for i in range(5):
        published(agent, topic, i)
    group = _sub()
    with subscription(agent, group, topic, "earliest") as sse:
        seen = messages(sse, 3)
    assert [f.id for f in seen] == ["0:0", "0:1", "0:2"]
    published(agent, topic, 5)
    with subscription(agent, group, topic, "earliest", last_event_id="0:2") as sse:
        rest = messages(sse, 3)
    assert [f.data["payload"] for f in rest] == [3, 4, 5]


def test_resume_on_several_partitions_loses_nothing(admin: AdminClient, agent: AgentClient) -> None:
    topic = new_topic(admin, partitions=3)["topic"]
    sent = [published(agent, topic, i, key=f"k{i}") for i in range(9)]
    group = _sub()
    with subscription(agent, group, topic, "earliest") as sse:
        seen = messages(sse, 4)
    later = [published(agent, topic, 100 + i, key=f"k{i}") for i in range(6)]
    with subscription(agent, group, topic, "latest", last_event_id=seen[-1].id) as sse:
        # At least once: everything not yet seen arrives (a little may come again).
        want = {f"{r['partition']}:{r['offset']}" for r in sent + later} - {f.id for f in seen}
        got: set[str] = set()
        sse.until(lambda f: f.event == "bus.message" and (got.add(f.id or "") or want <= got))


@pytest.mark.parametrize("value", ["abc", "1", "1:x", "-1:2", "1:2:3"])
def test_bad_last_event_id_is_422(admin: AdminClient, agent: AgentClient, value: str) -> None:
    topic = new_topic(admin)["topic"]
    r = agent.get(
        f"/api/agents/{agent.agent_id}/topics/subscribe/{_sub()}",
        params={"topic": topic},
        headers={"Last-Event-ID": value},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize("value", ["3:0", "999:0"])
def test_last_event_id_of_a_partition_the_topic_lacks_is_422(
    admin: AdminClient, agent: AgentClient, value: str
) -> None:
    # An id this stream could never have sent: resuming from it would silently start elsewhere.
    topic = new_topic(admin, partitions=3)["topic"]
    r = agent.get(
        f"/api/agents/{agent.agent_id}/topics/subscribe/{_sub()}",
        params={"topic": topic},
        headers={"Last-Event-ID": value},
    )
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "VALIDATION_FAILED"
    assert body["details"]["issues"][0]["path"] == "Last-Event-ID"


@pytest.mark.parametrize(
    ("query", "sub"),
    [
        ({"from": "middle"}, "s"),  # not earliest|latest
        ({"from": "earliest", "topic": None}, "s"),  # no topic
        ({"from": "latest"}, "a b"),  # a space in the subscription id
        ({}, "x" * 201),  # too long
    ],
)
def test_bad_subscribe_requests_are_422(
    admin: AdminClient, agent: AgentClient, query: dict[str, Any], sub: str
) -> None:
    params = {"topic": new_topic(admin)["topic"], **query}
    params = {k: v for k, v in params.items() if v is not None}
    r = agent.get(f"/api/agents/{agent.agent_id}/topics/subscribe/{sub}", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_FAILED"


def test_unknown_and_other_tenants_topics_are_404_before_the_stream(
    admin: AdminClient, agent: AgentClient
) -> None:
    theirs = new_topic(admin, tenant="acme")["topic"]
    for topic in (theirs, "t.default.never-made", "not-a-topic"):
        r = agent.get(
            f"/api/agents/{agent.agent_id}/topics/subscribe/{_sub()}", params={"topic": topic}
        )
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "TOPIC_NOT_FOUND"


def test_idle_streams_send_keep_alive_comments(
    make_server: ServerFactory,
) -> None:
    srv = make_server(OPSTAGE_TOPIC_BUS_KEEPALIVE_SECONDS="0.5")
    with AdminClient(srv.url) as admin:
        admin.login()
        topic = new_topic(admin)["topic"]
        agent = register(srv.url, admin.create_token(), "ka-" + secrets.token_hex(3))
        with subscription(agent, _sub(), topic, "latest") as sse:
            started = time.monotonic()
            sse.until(lambda f: f.event == "comment" and f.text == "keep-alive", timeout=5)
            assert time.monotonic() - started < 3
            published(agent, topic, "after")
            assert messages(sse, 1)[0].data["payload"] == "after"
        assert publish(agent, topic, 1).status_code == 200


def test_deleting_the_topic_ends_its_streams_with_a_bus_error(
    admin: AdminClient, agent: AgentClient
) -> None:
    topic = new_topic(admin)["topic"]
    with subscription(agent, _sub(), topic, "latest") as sse:
        admin.data("DELETE", f"/api/admin/topics/{topic}")
        frames = sse.until(lambda f: f.event == "bus.error", timeout=10)
        assert frames[-1].data == {"code": "TOPIC_NOT_FOUND", "message": "The topic was deleted."}
        assert list(sse) == []  # and the stream ends
