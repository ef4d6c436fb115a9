"""Issue 15: a validation issue names the field it is about, so a form can show it there.

A payload missing a property its action's ``inputSchema`` requires used to be reported with an
empty ``path`` (JSON Schema reports ``required`` at the object that lacks the property).
"""

from __future__ import annotations

from typing import Any

from opstage_testing.clients import AdminClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique

SCHEMA = {
    "type": "object",
    "properties": {
        "orderId": {"type": "string"},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city", "zip"],
        },
    },
    "required": ["orderId", "address"],
}


def _issues(admin: AdminClient, url: str, payload: dict[str, Any]) -> list[dict[str, str]]:
    r = admin.post(url, json={"payload": payload})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "ACTION_PAYLOAD_INVALID"
    issues: list[dict[str, str]] = r.json()["error"]["details"]["issues"]
    return issues


def test_a_missing_required_property_is_named_in_the_path(
    server: ServerProcess, admin: AdminClient
) -> None:
    code = unique("forms")
    agent = register(server.url, admin.create_token(), code)
    svc = agent.report(service(code, action("ship", inputSchema=SCHEMA)))["services"][0]
    url = f"/api/admin/capsule-services/{svc['id']}/actions/ship"

    assert [i["path"] for i in _issues(admin, url, {})] == ["address", "orderId"]
    issues = _issues(admin, url, {"orderId": "o-1", "address": {"zip": 75001}})
    assert issues == [
        {"path": "address.city", "message": "'city' is a required property"},
        {"path": "address.zip", "message": "75001 is not of type 'string'"},
    ]
    agent.close()


def test_body_and_query_issues_name_their_field(server: ServerProcess, admin: AdminClient) -> None:
    r = admin.post("/api/admin/users", json={"password": "p" * 16})
    assert r.status_code == 422
    paths = [i["path"] for i in r.json()["error"]["details"]["issues"]]
    assert paths == ["username", "role"]
    # A repeated query parameter with one bad value is named as the parameter.
    r = admin.get("/api/admin/agents", params=[("status", "ONLINE"), ("status", "NOPE")])
    assert r.status_code == 422
    assert [i["path"] for i in r.json()["error"]["details"]["issues"]] == ["status"]
