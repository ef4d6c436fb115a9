"""Tenant isolation on the topic bus: an agent works only in the tenants its registration
token granted (the default tenant when none); another tenant's topic — read, listed, published
to or guessed — is 404 ``TOPIC_NOT_FOUND``, never 403."""

from __future__ import annotations

import secrets
from typing import Any

from opstage_testing.clients import AdminClient, AgentClient, register
from opstage_testing.server import ServerProcess

from ..support.topics import new_topic, publish, published, subscription


def _agent(server: ServerProcess, admin: AdminClient, tenants: list[str] | None) -> AgentClient:
    body: dict[str, Any] = {"topicTenants": tenants} if tenants else {}
    raw = admin.data("POST", "/api/admin/registration-tokens", json=body)["rawToken"]
    return register(server.url, raw, "ten-" + secrets.token_hex(4))


def _listed(agent: AgentClient, **params: Any) -> list[str]:
    r = agent.get(f"/api/agents/{agent.agent_id}/topics", params={"pageSize": 100, **params})
    assert r.status_code == 200, r.text
    return [t["topic"] for t in r.json()["data"]]


def _not_found(r: Any) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "TOPIC_NOT_FOUND"


def test_agents_of_two_tenants_never_see_each_others_topics(
    server: ServerProcess, admin: AdminClient
) -> None:
    a_tenant, b_tenant = "a" + secrets.token_hex(3), "b" + secrets.token_hex(3)
    a_topic = new_topic(admin, tenant=a_tenant, name="orders")["topic"]
    b_topic = new_topic(admin, tenant=b_tenant, name="orders")["topic"]
    assert a_topic != b_topic  # one short name, two topics
    a = _agent(server, admin, [a_tenant])
    b = _agent(server, admin, [b_tenant])
    default = _agent(server, admin, None)

    published(a, a_topic, "for a")
    published(b, b_topic, "for b")
    assert _listed(a) == [a_topic]
    assert _listed(b) == [b_topic]
    assert a_topic not in _listed(default) and b_topic not in _listed(default)
    assert _listed(a, tenant=b_tenant) == []

    for outsider, topic in ((a, b_topic), (b, a_topic), (default, a_topic)):
        _not_found(publish(outsider, topic, "intrusion"))
        _not_found(
            outsider.get(
                f"/api/agents/{outsider.agent_id}/topics/subscribe/peek", params={"topic": topic}
            )
        )
        ns, tenant, name = topic.split(".")
        triple = {"namespace": ns, "tenant": tenant, "name": name, "payload": 1}
        _not_found(outsider.post(f"/api/agents/{outsider.agent_id}/topics/publish", json=triple))
    # A guessed name in another tenant answers exactly as a name that exists nowhere.
    guessed = publish(a, f"t.{b_tenant}.never-made", 1)
    _not_found(guessed)
    assert guessed.json()["error"] == publish(a, b_topic, 1).json()["error"]
    # The intrusions wrote nothing: b reads only its own message.
    with subscription(b, "check", b_topic, "earliest") as sse:
        frame = next(f for f in sse if f.event == "bus.message")
    assert frame.data["payload"] == "for b"
    # An agent granted none cannot use the default tenant's topics once granted another.
    _not_found(publish(a, new_topic(admin)["topic"], 1))


def test_an_agent_may_be_granted_several_tenants(server: ServerProcess, admin: AdminClient) -> None:
    one, two = "m" + secrets.token_hex(3), "n" + secrets.token_hex(3)
    t1 = new_topic(admin, tenant=one)["topic"]
    t2 = new_topic(admin, tenant=two)["topic"]
    agent = _agent(server, admin, [one, two])
    assert set(_listed(agent)) == {t1, t2}
    assert _listed(agent, tenant=two) == [t2]
    published(agent, t1, 1)
    published(agent, t2, 2)


def test_token_tenant_grants_are_validated_and_shown(admin: AdminClient) -> None:
    for bad in (["a.b"], [""], [], ["x" * 81], "acme", [1]):
        r = admin.post("/api/admin/registration-tokens", json={"topicTenants": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_FAILED"
    made = admin.data(
        "POST", "/api/admin/registration-tokens", json={"topicTenants": ["zeta", "acme", "acme"]}
    )
    assert made["topicTenants"] == ["acme", "zeta"]
    plain = admin.data("POST", "/api/admin/registration-tokens", json={})
    assert "topicTenants" not in plain
