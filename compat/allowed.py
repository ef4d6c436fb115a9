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
ERROR_CODES = "Where we follow the contract: errors that name their cause"
EMPTY_PATCH = "Where we follow the contract: an empty user update"
PAGE_RANGE = "Where we follow the contract: page and pageSize outside the contract's ranges"
EMPTY_QUERY = "Where we follow the contract: a query parameter with an empty value"
CONFIG_ROWS = "Where we follow the contract: configs and health in a service detail"
SERVICE_CODE = "Deliberate differences: a service code belongs to one agent (issue 6)"
BUS_SOURCE = "Deliberate differences: a bus publish speaks only for the agent's own services"
REGISTER_SERVICE_ID = "Additions: the register response carries serviceId"
SERVICE_STATUSES = "Additions: services carry storedStatus, effectiveStatus and agentStatus"
AGENT_STORED = "Additions: agents carry storedStatus"
COMMAND_LINKS = "Additions: commands carry retryOfCommandId, busEventId and busRouteId"
RESULT_TIMES = "Additions: a command result carries startedAt and finishedAt"
AUDIT_REQUEST_ID = "Additions: audit events carry requestId"
SETTINGS_SOURCES = "Operations: GET /api/admin/settings/maintenance (plus sources)"
MAINTENANCE_RUN = (
    "Additions: the maintenance run's answer carries expiredSessions, prunedDomainEvents"
)
DASHBOARD = "Additions: dashboard and metrics carry generatedAt; counts by status as the lists read"
DIAGNOSTICS = "Additions: runtime diagnostics carry python, …; node and V8 heap figures not sent"
BUS_ROUTE_FIELDS = "Additions: bus routes carry description and preApproved*"
BUS_ROUTES_PAGED = "Additions: the bus route list is paginated"
BUS_EVENT_FIELDS = "Additions: bus events carry causationId, depth and dryRun"
ROUTED_COMMANDS = "Additions: routedCommands entries carry dryRun, errorMessage, routeName"


def extra_key(key: str, row: str, scenario: str = "*", label: str = "*") -> list[Allowed]:
    """A key only we send, named, at any depth of the answer (`+data.x`, `+data[].y.x`)."""
    return [
        Allowed(scenario, label, f"+{key}", row),
        Allowed(scenario, label, f"+*.{key}", row),
    ]


def extra_keys(keys: str, row: str, scenario: str = "*", label: str = "*") -> list[Allowed]:
    return [a for key in keys.split() for a in extra_key(key, row, scenario, label)]


def refusal(scenario: str, label: str, status: str, code: str, row: str) -> list[Allowed]:
    """A refusal where the reference answers otherwise: its status and code pair, at one request."""
    out = [Allowed(scenario, label, f"code {code}", row)]
    if status:
        out.append(Allowed(scenario, label, f"status {status}", row))
    return out


ALLOWED: list[Allowed] = [
    # Not a number, or past 2^63: the reference's SQLite gets text and answers 500. First, so
    # that the body rule below does not claim them.
    *[
        Allowed("pagination", f"* {edge}", diff, PAGE_RANGE)
        for edge in ("page=abc", "pageSize=abc", "page huge")
        for diff in ("status 422/500", "code VALIDATION_FAILED/SQLITE_*")
    ],
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
    # Errors as errors.json names them (status and code), where the reference says UNAUTHORIZED.
    *refusal("auth", "login *", "", "LOGIN_FAILED/UNAUTHORIZED", ERROR_CODES),
    *refusal("auth", "bogus session cookie", "", "SESSION_INVALID/UNAUTHORIZED", ERROR_CODES),
    *refusal("*", "* no token", "", "AGENT_TOKEN_INVALID/UNAUTHORIZED", ERROR_CODES),
    *refusal("*", "* wrong token", "", "AGENT_TOKEN_INVALID/UNAUTHORIZED", ERROR_CODES),
    *refusal(
        "agent-protocol",
        "heartbeat other agent's id",
        "403/401",
        "AGENT_ID_MISMATCH/UNAUTHORIZED",
        ERROR_CODES,
    ),
    *refusal(
        "agent-protocol",
        "heartbeat unknown agent",
        "403/401",
        "AGENT_ID_MISMATCH/UNAUTHORIZED",
        ERROR_CODES,
    ),
    *refusal(
        "agent-protocol",
        "register with used token",
        "409/401",
        "REGISTRATION_TOKEN_USED/REGISTRATION_TOKEN_INVALID",
        ERROR_CODES,
    ),
    *refusal(
        "commands",
        "result by other agent",
        "403/404",
        "COMMAND_NOT_OWNED/COMMAND_NOT_FOUND",
        ERROR_CODES,
    ),
    *refusal("revoke", "* after revoke", "403/401", "AGENT_REVOKED/UNAUTHORIZED", ERROR_CODES),
    # Same code on both sides (AGENT_REVOKED): errors.json gives it 403, the reference 409.
    Allowed("revoke", "enable revoked", "status 403/409", ERROR_CODES),
    *refusal("users", "patch missing", "422/404", "VALIDATION_FAILED/USER_NOT_FOUND", EMPTY_PATCH),
    # page=0, -1, 1.5 and pageSize=0, 101: the reference clamps them, the contract's ranges refuse.
    *[
        a
        for edge in ("page=0", "page=-1", "page=1.5", "page=1e1", "pageSize=0", "pageSize=101")
        for a in refusal("pagination", f"* {edge}", "422/200", "VALIDATION_FAILED/None", PAGE_RANGE)
    ],
    # `status=`, `q=`, `page=`: the reference drops an empty value, the contract refuses it.
    *[
        a
        for scenario, label in (("pagination", "* empty"), ("filters", "* empty"))
        for a in refusal(scenario, label, "422/200", "VALIDATION_FAILED/None", EMPTY_QUERY)
    ],
    # The reference does not paginate bus routes, so it ignores what these say.
    *[
        a
        for edge in ("page=abc", "page huge", "pageSize=abc", "pageSize=1.5")
        for a in refusal(
            "pagination",
            f"/api/admin/bus/routes {edge}",
            "422/200",
            "VALIDATION_FAILED/None",
            BUS_ROUTES_PAGED,
        )
    ],
    Allowed("bus", "route list", "+pagination", BUS_ROUTES_PAGED),
    Allowed("pagination", "/api/admin/bus/routes *", "+pagination", BUS_ROUTES_PAGED),
    # Issue 6: refusals the reference does not make.
    *refusal(
        "agent-protocol",
        "report another agent's service code",
        "409/200",
        "CAPSULE_SERVICE_CODE_TAKEN/None",
        SERVICE_CODE,
    ),
    *refusal(
        "bus",
        "publish another agent's source",
        "403/200",
        "BUS_SOURCE_SERVICE_FORBIDDEN/None",
        BUS_SOURCE,
    ),
    # The contract's ConfigItem and HealthReport, not the reference's table rows.
    *[
        Allowed("services", "detail", f"-data.configs[[]].{k}", CONFIG_ROWS)
        for k in ("createdAt", "updatedAt", "metadataJson")
    ],
    Allowed("services", "detail", "~data.configs[[]].editable: bool/int", CONFIG_ROWS),
    Allowed("services", "detail", "~data.configs[[]].sensitive: bool/int", CONFIG_ROWS),
    Allowed("services", "detail", "+data.configs[[]].key", CONFIG_ROWS),
    Allowed("services", "detail", "-data.health.detailsJson", CONFIG_ROWS),
    Allowed("prepare", "prepare answered", "-data.action.timeoutSeconds", ABSENT),
    *[
        Allowed("operations", "diagnostics", f"-data.{k}", DIAGNOSTICS)
        for k in (
            "node",
            "memory.heapUsed",
            "memory.heapTotal",
            "memory.external",
            "memory.arrayBuffers",
        )
    ],
    # Keys only we send, each named with its row.
    *extra_key("serviceId", REGISTER_SERVICE_ID, "agent-protocol", "register*"),
    *extra_keys("effectiveStatus agentStatus", SERVICE_STATUSES),
    *extra_key("storedStatus", AGENT_STORED),
    *extra_keys("retryOfCommandId busEventId busRouteId", COMMAND_LINKS),
    *extra_keys("startedAt finishedAt", RESULT_TIMES, "commands", "result*"),
    *extra_keys("result.startedAt result.finishedAt", RESULT_TIMES),
    *extra_key("requestId", AUDIT_REQUEST_ID),
    *extra_key("sources", SETTINGS_SOURCES, "operations", "settings*"),
    *extra_keys("expiredSessions prunedDomainEvents", MAINTENANCE_RUN, "operations"),
    *extra_keys(
        "generatedAt serviceCounts.* byStatus.* commandDurations.byType commandDurations.count"
        " commandDurations.sampleLimit commandDurations.windowHours staleAgents topErrorCodes"
        " totals.busEvents totals.busRoutes",
        DASHBOARD,
        "operations",
        "dashboard",
    )
    + extra_keys(
        "generatedAt byStatus.* commandDurations.byType commandDurations.count"
        " commandDurations.sampleLimit commandDurations.windowHours staleAgents topErrorCodes"
        " totals.busEvents totals.busRoutes",
        DASHBOARD,
        "operations",
        "metrics",
    ),
    *extra_keys(
        "python startedAt generatedAt database eventBus eventLog heartbeats waiters busIngest"
        " maintenance memory.rssBytes memory.maxRssBytes",
        DIAGNOSTICS,
        "operations",
        "diagnostics",
    ),
    *extra_keys("description preApproved preApprovedAt preApprovedByUserId", BUS_ROUTE_FIELDS),
    *extra_keys("causationId depth dryRun", BUS_EVENT_FIELDS, "*", "*events*"),
    *extra_keys("causationId depth dryRun", BUS_EVENT_FIELDS, "bus", "events"),
    *extra_key("routeName", ROUTED_COMMANDS, "bus", "publish*"),
]
