"""The deliberate differences from the reference server. Each names its row in
docs/compatibility.md; a difference that matches none of them fails the run.

`diff` patterns (fnmatch): `status ours/ref`, `code ours/ref`, `+path` (a key only we send),
`-path` (a key only the reference sends), `~path: ours/ref` (a type).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Allowed:
    scenario: str
    label: str
    diff: str
    docs_row: str


BODY_422 = "Where we follow the contract: malformed or invalid request body"
CONFIRM = "Where we follow the contract: action missing confirmation"
CAPS = "Additions: capabilities in version, register and heartbeat"
AGENT_CODE = "Additions: registration tokens may carry agentCode"
EXPERIMENTAL = "Additions: the experimental mark is on every response under /bus/"
FILTERS = "Additions: bus routes may carry filters"
ABSENT = "Absent instead of null"
CONTRACT_ROUTES = "Where we follow the contract: routes of the contract the reference lacks"

ALLOWED: list[Allowed] = [
    # The reference lets a Zod (or SQLite constraint) error escape as 500; we answer 422.
    Allowed("*", "*", "status 422/500", BODY_422),
    Allowed("*", "*", "code VALIDATION_FAILED/INTERNAL_ERROR", BODY_422),
    Allowed("*", "*", "code VALIDATION_FAILED/FST_ERR_*", BODY_422),
    Allowed("*", "*", "status 422/400", BODY_422),
    # page=abc and friends reach SQLite as text on the reference: 500 SQLITE_MISMATCH.
    Allowed("*", "*", "code VALIDATION_FAILED/SQLITE_*", BODY_422),
    # The reference's 0.1 contract schema marks the default name optional *after* the default,
    # so an omitted name reaches its NOT NULL column: 500 there, 200 here.
    Allowed("registration-tokens", "create default name", "status 200/500", BODY_422),
    Allowed("registration-tokens", "create default name", "code None/SQLITE_*", BODY_422),
    Allowed("registration-tokens", "create no body", "status 200/500", BODY_422),
    Allowed("registration-tokens", "create no body", "code None/SQLITE_*", BODY_422),
    Allowed("actions", "execute HIGH without confirmation", "status 422/409", CONFIRM),
    Allowed("*", "*", "+data.capabilities", CAPS),
    Allowed("*", "*", "+data.agentCode", AGENT_CODE),
    Allowed("*", "*", "+data[[]].agentCode", AGENT_CODE),
    Allowed("bus", "*", "+experimental", EXPERIMENTAL),
    Allowed("pagination", "/api/admin/bus/*", "+experimental", EXPERIMENTAL),
    Allowed("bus", "*", "+data.filters", FILTERS),
    Allowed("bus", "*", "+data[[]].filters", FILTERS),
    Allowed("pagination", "/api/admin/bus/routes *", "+data[[]].filters", FILTERS),
    Allowed("commands", "detail running", "-data.result", ABSENT),
    # The reference answers these with its catch-all 404 NOT_FOUND ("Route not found.").
    Allowed("services", "contract *", "status 200/404", CONTRACT_ROUTES),
    Allowed("services", "contract *", "code None/NOT_FOUND", CONTRACT_ROUTES),
    Allowed(
        "services",
        "contract * missing",
        "code CAPSULE_SERVICE_NOT_FOUND/NOT_FOUND",
        CONTRACT_ROUTES,
    ),
    Allowed("audit", "contract detail", "status 200/404", CONTRACT_ROUTES),
    Allowed("audit", "contract detail*", "code None/NOT_FOUND", CONTRACT_ROUTES),
    Allowed(
        "audit", "contract detail missing", "code AUDIT_EVENT_NOT_FOUND/NOT_FOUND", CONTRACT_ROUTES
    ),
]
