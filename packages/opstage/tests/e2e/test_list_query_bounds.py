"""Issue 15, A3: pagination and search parameters out of bounds are 422, on every list route.

A huge ``page`` used to reach the database as an offset it cannot bind (500 on all nine list
routes). Every bad value is now ``422 VALIDATION_FAILED`` naming the parameter in
``details.issues[].path``; a ``q`` of spaces only is refused as the reference refuses it.
"""

from __future__ import annotations

import pytest
from opstage_testing.clients import AdminClient, register, service

from ..conftest import unique
from ..support.topics import new_topic

LIST_ROUTES = (
    "/api/admin/agents",
    "/api/admin/capsule-services",
    "/api/admin/commands",
    "/api/admin/audit-events",
    "/api/admin/registration-tokens",
    "/api/admin/users",
    "/api/admin/bus/routes",
    "/api/admin/bus/events",
    "/api/admin/bus/audit",
    "/api/admin/topics",
    "/api/admin/topics/{topic}/subscriptions",
)
# Lists an agent reads with its bearer token; ``{agentId}`` is the caller's own id.
AGENT_LIST_ROUTES = ("/api/agents/{agentId}/topics", "/api/agents/{agentId}/topics/subscriptions")
SEARCHABLE = ("/api/admin/agents", "/api/admin/capsule-services", "/api/admin/users")
PAGE_MAX = 2**31 - 1


def _concrete(ops: AdminClient, path: str) -> str:
    """A list under a topic is read for a real one: an unknown topic is 404 before its query."""
    if "{topic}" not in path:
        return path
    topic = new_topic(ops)
    return path.replace("{topic}", f"{topic['namespace']}.{topic['tenant']}.{topic['name']}")


def _refused(ops: AdminClient, path: str, params: dict[str, str], field: str) -> None:
    path = _concrete(ops, path)
    r = ops.get(path, params=params)
    assert r.status_code == 422, f"{path} {params} -> {r.status_code} {r.text}"
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert field in [i["path"] for i in error["details"]["issues"]], (path, params, error)


def test_every_paginated_route_is_listed_here(ops: AdminClient) -> None:
    spec = ops.get("/api/openapi.json").json()
    paginated = {
        path
        for path, methods in spec["paths"].items()
        if any(p.get("name") == "page" for p in methods.get("get", {}).get("parameters", []))
    }
    assert paginated == set(LIST_ROUTES) | set(AGENT_LIST_ROUTES)


@pytest.mark.parametrize("path", AGENT_LIST_ROUTES)
def test_an_agent_list_refuses_pages_out_of_bounds(ops: AdminClient, path: str) -> None:
    agent = register(str(ops.base_url), ops.create_token(), unique("lister"))
    url = path.replace("{agentId}", agent.agent_id)
    for field, value in (("page", "0"), ("page", str(PAGE_MAX + 1)), ("pageSize", "101")):
        r = agent.request("GET", url, params={field: value})
        assert r.status_code == 422, (field, value, r.text)
        issues = r.json()["error"]["details"]["issues"]
        assert field in [i["path"] for i in issues]
    assert agent.request("GET", url, params={"page": str(PAGE_MAX)}).json()["data"] == []
    agent.close()


@pytest.mark.parametrize("path", LIST_ROUTES)
@pytest.mark.parametrize(
    "value",
    ["1000000000000000000", str(PAGE_MAX + 1), "99999999999999999999999", "0", "-1", "abc", "1.5"],
)
def test_a_page_out_of_bounds_is_422(ops: AdminClient, path: str, value: str) -> None:
    _refused(ops, path, {"page": value}, "page")


@pytest.mark.parametrize("path", LIST_ROUTES)
@pytest.mark.parametrize("value", ["0", "-5", "101", "1000000000000000000", "x", "2.5", ""])
def test_a_page_size_out_of_bounds_is_422(ops: AdminClient, path: str, value: str) -> None:
    _refused(ops, path, {"pageSize": value}, "pageSize")


@pytest.mark.parametrize("path", LIST_ROUTES)
def test_the_last_possible_page_is_an_empty_page(ops: AdminClient, path: str) -> None:
    body = ops.get(_concrete(ops, path), params={"page": str(PAGE_MAX), "pageSize": "100"}).json()
    assert body["success"] is True, body
    assert body["data"] == []
    assert body["pagination"]["page"] == PAGE_MAX and body["pagination"]["pageSize"] == 100


@pytest.mark.parametrize("path", SEARCHABLE)
@pytest.mark.parametrize("q", [" ", "   ", "\t", ""])
def test_a_blank_search_is_422(ops: AdminClient, path: str, q: str) -> None:
    _refused(ops, path, {"q": q}, "q")


def test_a_search_is_trimmed_as_the_reference_trims_it(
    bus_server: object, ops: AdminClient
) -> None:
    code = unique("trimmed")
    agent = register(ops.base_url.__str__(), ops.create_token(), code)
    agent.report(service(code + "-svc"))
    for path, expected in (
        ("/api/admin/agents", code),
        ("/api/admin/capsule-services", code + "-svc"),
    ):
        found = ops.data("GET", path, params={"q": f"  {code}  "})
        assert [row["code"] for row in found] == [expected], path
    username, _ = ops.create_user("viewer")
    found = ops.data("GET", "/api/admin/users", params={"q": f" {username} "})
    assert [row["username"] for row in found] == [username]
    agent.close()


@pytest.mark.parametrize("value", ["100000000000000000000000", str(2**63), "-1", "x"])
def test_an_event_stream_resume_point_out_of_bounds_is_422(ops: AdminClient, value: str) -> None:
    """It used to open the stream and then break it (a 64-bit overflow in the first read)."""
    _refused(ops, "/api/admin/events/stream", {"lastEventId": value}, "lastEventId")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/admin/agents", {"q": "a\x00b"}, "q"),
        ("/api/admin/users", {"q": "\x00"}, "q"),
        ("/api/admin/audit-events", {"targetId": "x\x00"}, "targetId"),
        ("/api/admin/audit-events", {"action": "a\x00"}, "action"),
        ("/api/admin/commands", {"actionName": "a\x00"}, "actionName"),
        ("/api/admin/commands", {"agentId": "agt_\x00"}, "agentId"),
        ("/api/admin/bus/events", {"page": "1\x00"}, "page"),
        ("/api/admin/agents/agt_%00", {}, "url"),
        ("/api/admin/commands/cmd_%00x", {}, "url"),
    ],
)
def test_a_nul_in_the_url_is_422(
    ops: AdminClient, path: str, params: dict[str, str], field: str
) -> None:
    """No id or filter holds U+0000, and PostgreSQL's text cannot compare with it (a 500)."""
    _refused(ops, path, params, field)
