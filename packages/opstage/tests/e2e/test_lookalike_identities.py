"""Issue 15, A6: look-alike identities are refused or folded, over real HTTP.

Agent codes are plain ASCII. Usernames are NFKC-normalised and trimmed, refuse control,
zero-width, bidi and mixed-script characters, and are unique without regard to case; login
finds a user the same way. One password rule, with one message, wherever a password is set.
"""

from __future__ import annotations

import httpx
import pytest
from opstage_testing.clients import AdminClient
from opstage_testing.server import ADMIN_USERNAME, ServerProcess

from ..conftest import unique

LOOKALIKE_CODES = {
    "cyrillic-a": "\u0430gent-{}",  # Cyrillic a
    "cyrillic-e-and-o": "billing-s\u0435rvic\u0435-{}",
    "zero-width-joiner": "agent\u200d-{}",
    "zero-width-space": "agent\u200b-{}",
    "bidi-override": "agent-\u202e{}",
    "bidi-isolate": "\u2066agent-{}",
    "fullwidth": "\uff41\uff47\uff45\uff4e\uff54-{}",  # fullwidth "agent"
    "nul": "agent\x00-{}",
    "trailing-space": "agent-{} ",
    "inner-space": "agent {}",
    "tab": "agent\t{}",
    "leading-dash": "-agent-{}",
}


def _register(url: str, token: str, code: str) -> httpx.Response:
    body = {"registrationToken": token, "agent": {"code": code, "name": code}}
    return httpx.post(url + "/api/agents/register", json=body, timeout=30)


def _refused(r: httpx.Response, path: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert [i["path"] for i in error["details"]["issues"]] == [path]


@pytest.mark.parametrize("spelling", LOOKALIKE_CODES.values(), ids=LOOKALIKE_CODES.keys())
def test_lookalike_agent_codes_are_refused_before_the_token_is_spent(
    server: ServerProcess, admin: AdminClient, spelling: str
) -> None:
    suffix = unique("x")
    token = admin.create_token()
    _refused(_register(server.url, token, spelling.format(suffix)), "agent.code")
    # Nor can a registration token be scoped to one.
    r = admin.post("/api/admin/registration-tokens", json={"agentCode": spelling.format(suffix)})
    _refused(r, "agentCode")
    # The refused attempt did not spend the token.
    assert _register(server.url, token, f"agent-{suffix}").status_code == 200


def test_plain_agent_codes_still_register(server: ServerProcess, admin: AdminClient) -> None:
    for code in (unique("billing"), unique("Billing.Worker_2"), unique("ns:orders")):
        r = _register(server.url, admin.create_token(agentCode=code), code)
        assert r.status_code == 200, r.text


# Usernames --------------------------------------------------------------------------------

REFUSED_USERNAMES = {
    "cyrillic-a": "\u0430dmin",  # "admin" with a Cyrillic a
    "greek-omicron": "r\u03bfot",  # "root" with a Greek omicron
    "nul": "ad\x00min",
    "control": "ad\x07min",
    "zero-width-space": "ad\u200bmin",
    "zero-width-joiner": "ad\u200dmin",
    "bidi-override": "\u202eadmin",
    "inner-space": "ad min",
    "blank": "   ",
}
TAKEN_SPELLINGS = {
    "upper": ADMIN_USERNAME.upper(),
    "trailing-space": ADMIN_USERNAME + " ",
    "leading-tab": "\t" + ADMIN_USERNAME,
    "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in ADMIN_USERNAME),  # fullwidth "admin"
    "title": ADMIN_USERNAME.title(),
}
PASSWORD = "a-long-enough-password"


@pytest.mark.parametrize("name", REFUSED_USERNAMES.values(), ids=REFUSED_USERNAMES.keys())
def test_invisible_and_mixed_script_usernames_are_refused(admin: AdminClient, name: str) -> None:
    r = admin.post(
        "/api/admin/users", json={"username": name, "password": PASSWORD, "role": "viewer"}
    )
    _refused(r, "username")


@pytest.mark.parametrize("name", TAKEN_SPELLINGS.values(), ids=TAKEN_SPELLINGS.keys())
def test_other_spellings_of_a_taken_username_conflict(admin: AdminClient, name: str) -> None:
    r = admin.post(
        "/api/admin/users", json={"username": name, "password": PASSWORD, "role": "owner"}
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "USER_ALREADY_EXISTS"
    users = admin.every("/api/admin/users")
    assert [u["username"] for u in users if u["username"].casefold() == "admin"] == ["admin"]


def test_usernames_are_stored_normalised_and_found_without_regard_to_case(
    server: ServerProcess, admin: AdminClient
) -> None:
    name = unique("Alice")
    typed = "\u3000" + "".join(chr(ord(c) + 0xFEE0) for c in name[:3]) + name[3:] + " "
    user = admin.data(
        "POST", "/api/admin/users", json={"username": typed, "password": PASSWORD, "role": "viewer"}
    )
    assert user["username"] == name  # NFKC (fullwidth → ASCII), trimmed, case kept
    for spelling in (name, name.lower(), f"  {name.upper()} ", typed):
        with AdminClient(server.url) as c:
            me = c.login(spelling, PASSWORD).data("GET", "/api/admin/auth/me")
        assert me["user"]["id"] == user["id"]


def test_one_password_rule_with_one_message(admin: AdminClient) -> None:
    expected = "Password must be at least 12 characters."
    name = unique("pw")
    for short in ("12345678", "x" * 11):
        r = admin.post(
            "/api/admin/users", json={"username": name, "password": short, "role": "viewer"}
        )
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["message"] == expected
        assert error["details"]["issues"] == [{"path": "password", "message": expected}]
    user = admin.data(
        "POST", "/api/admin/users", json={"username": name, "password": PASSWORD, "role": "viewer"}
    )
    r = admin.post(f"/api/admin/users/{user['id']}/reset-password", json={"password": "12345678"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["issues"] == [{"path": "password", "message": expected}]
    # The username rule ignores case and surrounding space as the uniqueness rule does.
    r = admin.post(
        f"/api/admin/users/{user['id']}/reset-password", json={"password": f" {name.upper()} "}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == "Password must not equal the username."
