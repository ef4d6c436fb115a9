"""Topic bus admin API over HTTP: create / list (filters, pagination) / get / delete, names,
RBAC (viewer lists, operator+ changes), CSRF, audit, and the error envelope."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, register
from opstage_testing.server import ServerProcess

from ..support.topics import TOPICS, new_topic


def _err(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    err: dict[str, Any] = body["error"]
    return err


def test_create_defaults_list_get_delete_and_recreate(admin: AdminClient) -> None:
    name = "orders-" + secrets.token_hex(4)
    made = admin.data("POST", TOPICS, json={"namespace": "shop", "tenant": "default", "name": name})
    assert made["topic"] == f"shop.default.{name}"
    assert (made["partitions"], made["replication"]) == (3, 1)
    assert made["retentionMs"] is None and made["labels"] == {} and made["description"] is None
    assert made["id"].startswith("top_") and made["createdAt"].endswith("Z")

    assert admin.data("GET", f"{TOPICS}/{made['topic']}") == made
    listed = admin.data("GET", TOPICS, params={"namespace": "shop", "namePrefix": name})
    assert listed == [made]

    again = admin.post(TOPICS, json={"namespace": "shop", "tenant": "default", "name": name})
    _err(again, 409, "TOPIC_EXISTS")

    gone = admin.data("DELETE", f"{TOPICS}/{made['topic']}")
    assert gone["topic"] == made["topic"] and gone["engineDeleted"] is True
    _err(admin.get(f"{TOPICS}/{made['topic']}"), 404, "TOPIC_NOT_FOUND")
    _err(admin.delete(f"{TOPICS}/{made['topic']}"), 404, "TOPIC_NOT_FOUND")
    # Deleted in both places: the same name can be created again.
    again = admin.data(
        "POST", TOPICS, json={"namespace": "shop", "tenant": "default", "name": name}
    )
    assert again["id"] != made["id"]


def test_every_field_round_trips(admin: AdminClient) -> None:
    made = new_topic(
        admin,
        tenant="acme",
        partitions=7,
        replication=2,
        retentionMs=86_400_000,
        description="orders for acme",
        labels={"team": "ops"},
    )
    assert made["tenant"] == "acme"
    assert (made["partitions"], made["replication"], made["retentionMs"]) == (7, 2, 86_400_000)
    assert made["description"] == "orders for acme" and made["labels"] == {"team": "ops"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"namespace": "a.b", "tenant": "default", "name": "x"}, "namespace"),
        ({"namespace": "a", "tenant": "", "name": "x"}, "tenant"),
        ({"namespace": "a", "tenant": "default", "name": "x" * 81}, "name"),
        ({"namespace": "a", "tenant": "default", "name": "sp ace"}, "name"),
        ({"namespace": "a", "tenant": "default", "name": "ünï"}, "name"),
        ({"namespace": "a", "tenant": "default"}, "name"),
        ({"namespace": "a", "tenant": "default", "name": "x", "partitions": 0}, "partitions"),
        ({"namespace": "a", "tenant": "default", "name": "x", "partitions": 10**20}, "partitions"),
        ({"namespace": "a", "tenant": "default", "name": "x", "partitions": "3"}, "partitions"),
        ({"namespace": "a", "tenant": "default", "name": "x", "retentionMs": -1}, "retentionMs"),
        ({"namespace": "a", "tenant": "default", "name": "x", "labels": {"a": 1}}, "labels.a"),
        ({"namespace": 5, "tenant": "default", "name": "x"}, "namespace"),
    ],
)
def test_bad_topics_are_422_with_issues(
    admin: AdminClient, body: dict[str, Any], path: str
) -> None:
    err = _err(admin.post(TOPICS, json=body), 422, "VALIDATION_FAILED")
    assert path in [i["path"] for i in err["details"]["issues"]], err


def test_list_filters_and_pagination(admin: AdminClient) -> None:
    ns = "pg" + secrets.token_hex(3)
    made = [
        admin.data("POST", TOPICS, json={"namespace": ns, "tenant": t, "name": f"n{i}"})
        for i, t in enumerate(["default", "default", "other", "default", "other"])
    ]
    everything = admin.data("GET", TOPICS, params={"namespace": ns, "pageSize": 100})
    assert [t["topic"] for t in everything] == sorted(t["topic"] for t in made)
    other = admin.data("GET", TOPICS, params={"namespace": ns, "tenant": "other"})
    assert {t["name"] for t in other} == {"n2", "n4"}
    r = admin.get(TOPICS, params={"namespace": ns, "pageSize": 2, "page": 3})
    assert r.json()["pagination"] == {"page": 3, "pageSize": 2, "total": 5}
    assert len(r.json()["data"]) == 1
    beyond = admin.get(TOPICS, params={"namespace": ns, "pageSize": 2, "page": 4}).json()
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 5
    _err(admin.get(TOPICS, params={"pageSize": 0}), 422, "VALIDATION_FAILED")
    _err(admin.get(TOPICS, params={"pageSize": 101}), 422, "VALIDATION_FAILED")
    _err(admin.get(TOPICS, params={"page": 10**20}), 422, "VALIDATION_FAILED")
    _err(admin.get(TOPICS, params={"tenant": "a.b"}), 422, "VALIDATION_FAILED")
    assert admin.data("GET", TOPICS, params={"namePrefix": "%"}) == []


def test_viewer_lists_operator_changes_anonymous_is_401(
    server: ServerProcess, admin: AdminClient
) -> None:
    topic = new_topic(admin)
    vname, vpw = admin.create_user("viewer")
    oname, opw = admin.create_user("operator")
    with AdminClient(server.url) as viewer, AdminClient(server.url) as operator:
        viewer.login(vname, vpw)
        operator.login(oname, opw)
        assert viewer.get(TOPICS).status_code == 200
        assert viewer.get(f"{TOPICS}/{topic['topic']}").status_code == 200
        body = {"namespace": "t", "tenant": "default", "name": "v-" + secrets.token_hex(3)}
        _err(viewer.post(TOPICS, json=body), 403, "FORBIDDEN")
        _err(viewer.delete(f"{TOPICS}/{topic['topic']}"), 403, "FORBIDDEN")
        made = operator.data("POST", TOPICS, json=body)
        operator.data("DELETE", f"{TOPICS}/{made['topic']}")
        operator.data("DELETE", f"{TOPICS}/{topic['topic']}")
    with AdminClient(server.url) as anon:
        _err(anon.get(TOPICS), 401, "UNAUTHORIZED")
        _err(anon.post(TOPICS, json=body), 401, "UNAUTHORIZED")


def test_state_changes_need_the_csrf_header(server: ServerProcess, admin: AdminClient) -> None:
    body = {"namespace": "t", "tenant": "default", "name": "c-" + secrets.token_hex(3)}
    r = admin.post(TOPICS, json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403, r.text
    assert admin.get(TOPICS, params={"namePrefix": body["name"]}).json()["data"] == []


def test_create_and_delete_are_audited(admin: AdminClient) -> None:
    topic = new_topic(admin)
    admin.data("DELETE", f"{TOPICS}/{topic['topic']}")
    rows = admin.data(
        "GET", "/api/admin/audit-events", params={"targetId": topic["id"], "pageSize": 100}
    )
    assert sorted(r["action"] for r in rows) == ["topic.created", "topic.deleted"]
    assert all(r["result"] == "SUCCESS" and r["targetType"] == "Topic" for r in rows)
    assert all(r["metadata"]["topic"] == topic["topic"] for r in rows)


def test_the_flag_off_answers_topic_bus_disabled_after_auth(make_server: Any) -> None:
    srv = make_server(OPSTAGE_TOPIC_BUS_ENABLED="false")
    with AdminClient(srv.url) as anon:
        _err(anon.get(TOPICS), 401, "UNAUTHORIZED")
    with AdminClient(srv.url) as admin:
        admin.login()
        _err(admin.get(TOPICS), 404, "TOPIC_BUS_DISABLED")
        body = {"namespace": "t", "tenant": "default", "name": "off"}
        _err(admin.post(TOPICS, json=body), 404, "TOPIC_BUS_DISABLED")
        agent = register(srv.url, admin.create_token(), "off-" + secrets.token_hex(3))
        r = agent.post(
            f"/api/agents/{agent.agent_id}/topics/publish",
            json={"topic": "t.default.off", "payload": 1},
        )
        _err(r, 404, "TOPIC_BUS_DISABLED")
        r = agent.get(
            f"/api/agents/{agent.agent_id}/topics/subscribe/s", params={"topic": "t.default.off"}
        )
        _err(r, 404, "TOPIC_BUS_DISABLED")
        bad = agent.post(
            f"/api/agents/{agent.agent_id}/topics/publish",
            json={"topic": "t.default.off", "payload": 1},
            headers={"Authorization": "Bearer opstage_agent_wrong"},
        )
        assert bad.status_code == 401  # authentication first: a stranger learns nothing
