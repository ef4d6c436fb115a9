"""Helpers for the topic-bus tests: admin topic creation and agent SSE subscriptions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from opstage_testing.clients import AdminClient, AgentClient
from opstage_testing.sse import Sse

TOPICS = "/api/admin/topics"


def new_topic(admin: AdminClient, *, tenant: str = "default", **extra: Any) -> dict[str, Any]:
    body = {"namespace": "t", "tenant": tenant, "name": "n-" + secrets.token_hex(5), **extra}
    data: dict[str, Any] = admin.data("POST", TOPICS, json=body)
    return data


def publish(agent: AgentClient, topic: str, payload: Any, **body: Any) -> httpx.Response:
    headers = body.pop("http_headers", None)
    return agent.post(
        f"/api/agents/{agent.agent_id}/topics/publish",
        json={"topic": topic, "payload": payload, **body},
        headers=headers,
    )


def published(agent: AgentClient, topic: str, payload: Any, **body: Any) -> dict[str, Any]:
    r = publish(agent, topic, payload, **body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


@contextmanager
def subscription(
    agent: AgentClient,
    subscription_id: str,
    topic: str,
    start: str = "earliest",
    last_event_id: str | None = None,
    timeout: float = 10.0,
) -> Iterator[Sse]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with agent.stream(
        "GET",
        f"/api/agents/{agent.agent_id}/topics/subscribe/{subscription_id}",
        params={"topic": topic, "from": start},
        headers=headers,
        timeout=httpx.Timeout(timeout),
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        yield Sse(r)


def messages(sse: Sse, count: int, timeout: float = 10.0) -> list[Any]:
    """The next ``count`` bus.message frames (comments and keep-alives skipped)."""
    got: list[Any] = []
    sse.until(
        lambda f: f.event == "bus.message" and bool(got.append(f) or len(got) >= count), timeout
    )
    return got
