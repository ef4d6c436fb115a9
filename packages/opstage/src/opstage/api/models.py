"""Request bodies of the contract, as pydantic models (unknown fields are ignored).

Every body is validated strictly (issue 15): a boolean is JSON ``true``/``false`` — never
``"yes"``, ``"on"``, ``"1"`` or ``1`` — an integer is a JSON integer, and an enum is one of its
listed members, so a result's ``success`` or an operator's ``confirmation`` means what the
sender wrote, and a registration is refused whole before its single-use token is spent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from opstage.domain.identity import (
    AGENT_CODE_MAX_LENGTH,
    AGENT_CODE_PATTERN,
    MIN_PASSWORD_LENGTH,
)

HealthStatusIn = Literal["UP", "DEGRADED", "DOWN", "UNKNOWN"]
DangerLevelIn = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
RuntimeIn = Literal["nodejs", "java", "python", "go", "other"]  # ReportedService.runtime
# The contract lists ``embedded``; ``ophub`` is our documented extension (docs/compatibility.md).
# ``sidecar``/``external`` exist in AgentSummary's enum but no server runs them: refused.
AgentModeIn = Literal["embedded", "ophub"]
SERVICE_CODE = r"^[a-z0-9][a-z0-9_-]*$"
TOPIC_FRAGMENT = StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False, strict=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, by_alias=True)


class LoginRequest(Body):
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class CreateRegistrationTokenRequest(Body):
    name: str = Field("Default registration token", min_length=1, max_length=200)
    expiresInSeconds: int | None = Field(None, ge=60, le=31_536_000)
    agentCode: str | None = Field(
        None, min_length=1, max_length=AGENT_CODE_MAX_LENGTH, pattern=AGENT_CODE_PATTERN
    )
    # The topic-bus tenants the registered agent may use (docs/topics.md); none: the default.
    topicTenants: list[Annotated[str, TOPIC_FRAGMENT]] | None = Field(
        None, min_length=1, max_length=20
    )


class HealthInput(Body):
    status: HealthStatusIn
    message: str | None = Field(None, max_length=2000)
    details: dict[str, Any] | None = None


class ConfigInput(Body):
    key: str = Field(min_length=1, max_length=200)
    label: str | None = Field(None, max_length=200)
    type: str = Field(min_length=1, max_length=40)
    source: str | None = Field(None, max_length=200)
    editable: bool | None = None
    sensitive: bool | None = None
    valuePreview: str | None = Field(None, max_length=4000)
    defaultValue: str | None = Field(None, max_length=4000)
    secretRef: str | None = Field(None, max_length=300)


class ActionInput(Body):
    name: str = Field(min_length=1, max_length=120)
    label: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    dangerLevel: DangerLevelIn | None = None
    requiresConfirmation: bool | None = None
    inputSchema: dict[str, Any] | None = None
    outputSchema: dict[str, Any] | None = None
    timeoutSeconds: int | None = Field(None, gt=0, le=86_400)
    category: str | None = Field(None, max_length=120)
    order: int | None = None


class ReportedService(Body):
    code: str = Field(min_length=1, max_length=80, pattern=SERVICE_CODE)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    version: str | None = Field(None, max_length=80)
    runtime: RuntimeIn | None = None
    manifest: dict[str, Any]
    health: HealthInput | None = None
    configs: list[ConfigInput] | None = Field(None, max_length=500)
    actions: list[ActionInput] | None = Field(None, max_length=200)


class AgentIdentity(Body):
    code: str = Field(min_length=1, max_length=AGENT_CODE_MAX_LENGTH, pattern=AGENT_CODE_PATTERN)
    name: str | None = Field(None, max_length=200)
    mode: AgentModeIn = "embedded"
    runtime: str | None = Field(None, max_length=40)


class RegisterAgentRequest(Body):
    registrationToken: str = Field(pattern=r"^opstage_reg_", max_length=200)
    agent: AgentIdentity
    service: ReportedService | None = None


class HeartbeatRequest(Body):
    serviceId: str | None = Field(None, pattern=r"^svc_", max_length=40)
    health: HealthInput | None = None


class ServiceReportRequest(Body):
    services: list[ReportedService] = Field(min_length=1, max_length=100)


class CommandResultRequest(Body):
    success: bool
    message: str | None = None
    data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    startedAt: str | None = Field(None, max_length=64)
    finishedAt: str | None = Field(None, max_length=64)


class CreateActionCommandRequest(Body):
    payload: dict[str, Any] = Field(default_factory=dict)
    confirmation: bool | None = None


class RetryCommandRequest(Body):
    confirmation: bool | None = None


RoleIn = Literal["owner", "operator", "viewer"]


# Passwords: the length rule (12) and its message live in domain.identity, once, for the API,
# the CLI and the bootstrap alike; the model only bounds the size, and documents the rule
# (json_schema_extra: the OpenAPI document says it, the domain checks it; ADR 0012).
NewPassword = Field(max_length=1024, json_schema_extra={"minLength": MIN_PASSWORD_LENGTH})


class CreateUserRequest(Body):
    username: str = Field(min_length=1, max_length=320)
    password: str = NewPassword
    displayName: str | None = Field(None, max_length=200)
    role: RoleIn


class UpdateUserRequest(Body):
    displayName: str | None = Field(None, max_length=200)
    role: RoleIn | None = None
    status: Literal["ACTIVE", "DISABLED"] | None = None


class ResetUserPasswordRequest(Body):
    password: str = NewPassword


class TransferServiceRequest(Body):
    agentId: str = Field(pattern=r"^agt_", max_length=40)


class BusRouteMatch(Body):
    eventType: str = Field(min_length=1, max_length=200)
    sourceServiceCode: str | None = Field(None, min_length=1, max_length=80)


class BusRouteTarget(Body):
    serviceCode: str = Field(min_length=1, max_length=80)
    actionName: str = Field(min_length=1, max_length=120)


class BusRouteFilter(Body):
    path: str = Field(max_length=500)
    op: Literal["equals", "in", "exists"]
    value: Any = None


class BusRouteRequest(Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    status: Literal["ENABLED", "DRY_RUN", "DISABLED"] | None = None
    match: BusRouteMatch
    target: BusRouteTarget
    inputMapping: dict[str, str] = Field(default_factory=dict)
    filters: list[BusRouteFilter] = Field(default_factory=list, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    preApproved: bool = False


class BusRoutePolicy(Body):
    dryRun: bool | None = None


class BusEventRequest(Body):
    eventId: str | None = Field(None, min_length=1, max_length=200)
    eventType: str = Field(min_length=1, max_length=200)
    sourceServiceCode: str = Field(min_length=1, max_length=80)
    payload: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    correlationId: str | None = Field(None, max_length=200)
    causationId: str | None = Field(None, max_length=200)
    occurredAt: AwareDatetime | None = None
    routePolicy: BusRoutePolicy | None = None


class SimulateRequest(Body):
    limit: int = Field(50, ge=1, le=500)
    route: BusRouteRequest | None = None


TopicFragment = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")


class TopicCreateRequest(Body):
    namespace: str = TopicFragment
    tenant: str = TopicFragment
    name: str = TopicFragment
    partitions: int = Field(3, ge=1, le=64)
    replication: int = Field(1, ge=1, le=5)
    retention_ms: int | None = Field(None, alias="retentionMs", ge=1, le=10 * 365 * 86_400_000)
    description: str | None = Field(None, max_length=1000)
    labels: dict[str, str] = Field(default_factory=dict, max_length=20)
    audit_publish: bool = Field(False, alias="auditPublish")


class TopicPublishRequest(Body):
    topic: str | None = Field(None, min_length=5, max_length=242)
    namespace: str | None = Field(None, max_length=80)
    tenant: str | None = Field(None, max_length=80)
    name: str | None = Field(None, max_length=80)
    key: str | None = Field(None, min_length=1, max_length=1024)
    payload: Any  # any JSON value; required
    headers: dict[str, str] = Field(default_factory=dict)


SubscriptionName = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
TopicWire = Field(min_length=5, max_length=242)


class TopicSubscriptionCreateRequest(Body):
    """A durable subscription (ADR 0015). Unknown fields are refused, not ignored: there is
    no ack mode or ack timeout to set, and a client asking for one must learn it is absent."""

    model_config = ConfigDict(extra="forbid", strict=True)
    topic: str | None = Field(None, min_length=5, max_length=242)  # the agent route's topic
    name: str = SubscriptionName
    start: Literal["earliest", "latest"] = Field("latest", alias="from")
    max_deliveries: int | None = Field(None, alias="maxDeliveries", ge=1, le=1000)
    dlq_topic: str | None = Field(None, alias="dlqTopic", min_length=5, max_length=242)


class TopicOffset(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    partition: int = Field(ge=0, le=63)
    offset: int = Field(ge=0, le=2**62)


class TopicAckRequest(Body):
    model_config = ConfigDict(extra="forbid", strict=True)
    topic: str = TopicWire
    offsets: list[TopicOffset] = Field(min_length=1, max_length=64)


class TopicNackRequest(Body):
    model_config = ConfigDict(extra="forbid", strict=True)
    topic: str = TopicWire
    partition: int = Field(ge=0, le=63)
    offset: int = Field(ge=0, le=2**62)
    reason: str | None = Field(None, max_length=200)
