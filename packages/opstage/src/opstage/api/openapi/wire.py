"""The answers' ``data`` shapes, declared as pydantic models for the OpenAPI document (ADR 0012).

They describe what ``api/views.py`` and the routes build; they never render an answer (the
routes send orjson bytes, so declaring them cannot change the wire). A field with a default is
one the server may leave out; ``X | None`` is one it may send as ``null``. Extra keys are
allowed: the contract lets the server add fields. tests/e2e/test_openapi_answers.py validates
real answers against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opstage.domain.status import (
    AgentStatus,
    CommandStatus,
    CommandType,
    HealthStatus,
    Role,
    ServiceStatus,
    TokenStatus,
    UserStatus,
)

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Json = dict[str, Any]
DangerLevel = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
BusRouteStatus = Literal["ENABLED", "DRY_RUN", "DISABLED"]
Experimental = Literal["v0.4-experimental"]


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class Pagination(Wire):
    page: int
    pageSize: int
    total: int


class ErrorInfo(Wire):
    code: str = Field(description="a code of contracts/errors.json or docs/compatibility.md")
    message: str
    details: Json = Field(
        default_factory=dict,
        description="redacted specifics (validation issues, ids); a 5xx carries only requestId",
    )


class ErrorEnvelope(Wire):
    success: Literal[False]
    error: ErrorInfo
    experimental: Experimental | None = None


# --- system, auth, users ---------------------------------------------------------------------


class Liveness(Wire):
    status: Literal["UP"]


class Capabilities(Wire):
    longPoll: bool
    longPollMaxSeconds: float


class SystemVersion(Wire):
    version: str
    edition: Literal["ce"]
    commit: str | None = None
    buildTime: str | None = None
    capabilities: Capabilities


class DatabaseProbe(Wire):
    status: HealthStatus
    kind: str
    latencyMs: int | None


class SystemHealth(Wire):
    status: HealthStatus
    timestamp: Timestamp
    version: str
    edition: Literal["ce"]
    database: DatabaseProbe
    uptimeSeconds: int


class User(Wire):
    id: str
    username: str
    displayName: str | None
    role: Role
    status: UserStatus
    lastLoginAt: Timestamp | None
    createdAt: Timestamp | None
    updatedAt: Timestamp | None


class AdminSession(Wire):
    user: User
    csrfToken: str
    expiresAt: Timestamp | None


class CsrfToken(Wire):
    csrfToken: str
    expiresAt: Timestamp | None


# --- tokens, agents -----------------------------------------------------------------------------


class RegistrationToken(Wire):
    id: str
    name: str
    status: TokenStatus
    agentCode: str | None
    agentId: str | None
    expiresAt: Timestamp | None
    usedAt: Timestamp | None
    revokedAt: Timestamp | None
    createdAt: Timestamp
    updatedAt: Timestamp
    topicTenants: list[str] | None = Field(None, description="only where granted (docs/topics.md)")


class CreatedRegistrationToken(RegistrationToken):
    rawToken: str = Field(description="shown once; only its hash is stored")
    token: str = Field(description="the same value as rawToken")


class Agent(Wire):
    id: str
    code: str
    name: str | None
    mode: str
    runtime: str | None
    status: AgentStatus
    storedStatus: AgentStatus
    lastHeartbeatAt: Timestamp | None
    createdAt: Timestamp
    updatedAt: Timestamp
    serviceCount: int | None = None


class AgentTiming(Wire):
    heartbeatIntervalSeconds: float
    commandPollIntervalSeconds: float
    capabilities: Capabilities


class RegisteredAgent(AgentTiming):
    agentId: str
    agentToken: str = Field(description="shown once; only its hash is stored")


# --- capsule services -------------------------------------------------------------------------


class CapsuleService(Wire):
    id: str
    agentId: str
    code: str
    name: str
    description: str | None
    version: str | None
    runtime: str | None
    status: ServiceStatus
    effectiveStatus: ServiceStatus
    storedStatus: str
    healthStatus: HealthStatus | None
    agentStatus: AgentStatus
    lastReportedAt: Timestamp | None
    lastHealthAt: Timestamp | None
    createdAt: Timestamp
    updatedAt: Timestamp


class AgentDetail(Agent):
    services: list[CapsuleService]


class ServiceReport(Wire):
    services: list[CapsuleService]


class HealthReport(Wire):
    id: str | None
    serviceId: str
    agentId: str
    status: HealthStatus
    message: str | None
    details: Json
    reportedAt: Timestamp
    workspaceId: str
    createdAt: Timestamp


class ConfigItem(Wire):
    id: str
    serviceId: str
    key: str
    configKey: str
    workspaceId: str
    label: str | None
    type: str
    source: str | None
    editable: bool | None
    sensitive: bool | None
    valuePreview: str | None = Field(description="masked when sensitive")
    defaultValue: str | None
    secretRef: str | None


class ActionDefinition(Wire):
    id: str
    serviceId: str
    name: str
    label: str
    description: str | None
    dangerLevel: DangerLevel
    requiresConfirmation: bool
    inputSchema: Json
    enabled: bool
    createdAt: Timestamp | None
    updatedAt: Timestamp | None
    timeoutSeconds: int | None = None
    category: str | None = None
    order: int | None = None
    outputSchema: Json | None = None


class CapsuleServiceDetail(CapsuleService):
    manifest: Json
    configs: list[ConfigItem]
    actions: list[ActionDefinition]
    health: HealthReport | None = Field(None, description="absent until the first report")


# --- commands, audit --------------------------------------------------------------------------


class Command(Wire):
    id: str
    agentId: str
    serviceId: str | None
    type: CommandType
    actionName: str | None
    status: CommandStatus
    payload: Json | None = Field(description="sensitive values redacted, except for the agent")
    createdByUserId: str | None
    retryOfCommandId: str | None
    busEventId: str | None
    busRouteId: str | None
    errorCode: str | None
    errorMessage: str | None
    createdAt: Timestamp
    updatedAt: Timestamp
    startedAt: Timestamp | None
    completedAt: Timestamp | None
    expiresAt: Timestamp | None
    durationMs: int | None


class CommandResult(Wire):
    id: str
    commandId: str
    agentId: str | None
    success: bool
    message: str | None
    data: Json
    error: Json
    startedAt: Timestamp | None
    finishedAt: Timestamp | None
    reportedAt: Timestamp
    createdAt: Timestamp


class CommandDetail(Command):
    result: CommandResult | None = Field(None, description="absent until the agent reports")


class ActionPrepare(Wire):
    action: ActionDefinition
    initialPayload: Json
    currentState: Json
    prepareCommand: CommandDetail


class AuditEvent(Wire):
    id: str
    actorType: Literal["USER", "AGENT", "SYSTEM"]
    actorId: str | None
    action: str
    targetType: str | None
    targetId: str | None
    result: Literal["SUCCESS", "FAILURE", "DENIED"]
    message: str | None
    metadata: Json
    ipAddress: str | None
    userAgent: str | None
    requestId: str | None
    createdAt: Timestamp


# --- observability, maintenance ---------------------------------------------------------------


class Workspace(Wire):
    id: str
    code: str
    name: str
    status: str


class DashboardSummary(Wire):
    workspace: Workspace
    agentCounts: dict[str, int]
    serviceCounts: dict[str, int]
    commandCounts: dict[str, int]
    auditEventCount: int
    recentCommands: list[Command]
    recentAuditEvents: list[AuditEvent]
    generatedAt: Timestamp


class AdminMetrics(Wire):
    workspace: Workspace
    totals: dict[str, int]
    byStatus: dict[str, dict[str, int]]
    operational: dict[str, int]
    commandDurations: Json
    topCommandErrors: list[Json]
    topErrorCodes: Json
    staleAgents: Json
    generatedAt: Timestamp


class RuntimeDiagnostics(Wire):
    version: str
    edition: Literal["ce"]
    python: str
    platform: str
    arch: str
    pid: int
    startedAt: Timestamp
    uptimeSeconds: int
    memory: Json
    database: Json
    eventBus: Json
    eventLog: Json
    heartbeats: Json
    busIngest: Json
    waiters: Json
    pauses: Json = Field(description="the cyclic collector's passes and the event loop's lag")
    maintenance: Json
    config: Json = Field(description="the effective settings, secrets masked")
    generatedAt: Timestamp


class MaintenanceSettings(Wire):
    agentOfflineThresholdSeconds: int
    auditRetentionDays: int
    maintenanceIntervalSeconds: int
    sources: dict[str, Literal["environment", "stored"]]


class MaintenanceSettingsPatch(Wire):
    """Known keys only; an integer in the key's range, or ``null`` to go back to the environment."""

    model_config = ConfigDict(extra="forbid")
    agentOfflineThresholdSeconds: int | None = None
    auditRetentionDays: int | None = None
    maintenanceIntervalSeconds: int | None = None


class MaintenanceRun(Wire):
    expiredRegistrationTokens: int
    expiredCommands: int
    offlineAgents: int
    offlineServices: int
    deletedAuditEvents: int
    expiredSessions: int
    prunedDomainEvents: int
    ranAt: Timestamp


# --- Capsule Bus, topics ----------------------------------------------------------------------


class BusRouteMatchView(Wire):
    eventType: str
    sourceServiceCode: str | None


class BusRouteTargetView(Wire):
    serviceCode: str
    actionName: str


class BusRoute(Wire):
    id: str
    name: str
    description: str | None
    status: BusRouteStatus
    match: BusRouteMatchView
    target: BusRouteTargetView
    inputMapping: dict[str, str]
    filters: list[Json]
    metadata: Json
    preApproved: bool
    preApprovedByUserId: str | None
    preApprovedAt: Timestamp | None
    createdAt: Timestamp
    updatedAt: Timestamp
    experimental: Experimental


class BusEvent(Wire):
    id: str
    agentId: str
    sourceServiceId: str | None
    sourceServiceCode: str
    eventType: str
    payload: Json | None
    metadata: Json | None
    correlationId: str | None
    causationId: str | None
    depth: int
    dryRun: bool
    routeCount: int
    occurredAt: Timestamp | None
    acceptedAt: Timestamp
    experimental: Experimental


class RoutedCommand(Wire):
    routeId: str | None
    routeName: str
    dryRun: bool
    targetServiceCode: str
    actionName: str
    status: str
    commandId: str | None = None


class BusPublishReceipt(Wire):
    eventId: str
    experimental: Experimental
    routedCommands: list[RoutedCommand]
    replay: bool | None = Field(None, description="true when the idempotency key was seen")


class BusSimulation(Wire):
    evaluated: int
    counts: dict[str, int]
    results: list[Json]


class Topic(Wire):
    id: str
    topic: str = Field(description="namespace.tenant.name")
    namespace: str
    tenant: str
    name: str
    partitions: int
    replication: int
    retentionMs: int | None
    description: str | None
    labels: dict[str, str]
    auditPublish: bool = Field(description="every publish to it is audited (ADR 0015)")
    createdAt: Timestamp


class DeletedTopic(Topic):
    engineDeleted: bool


class TopicReceipt(Wire):
    topic: str
    partition: int
    offset: int
    produced_at: Timestamp


class PartitionPosition(Wire):
    partition: int
    committed: int
    end: int
    lag: int


class TopicSubscription(Wire):
    """A durable subscription and how far its committed offsets trail the topic (ADR 0015)."""

    id: str
    topic: str
    tenant: str
    name: str
    maxDeliveries: int | None
    dlqTopic: str | None
    createdAt: Timestamp
    lag: int
    partitions: list[PartitionPosition]


class TopicPartitionBounds(Wire):
    partition: int
    firstOffset: int = Field(description="the first offset still held (endOffset when none)")
    endOffset: int = Field(description="the offset the next publish gets (high watermark)")
    messages: int = Field(description="messages held: endOffset - firstOffset")


class TopicMessage(Wire):
    partition: int
    offset: int
    key: str | None
    payload: Any
    headers: dict[str, str] = Field(description="a DLQ message's include opstage.origin.*")
    timestamp: Timestamp


class TopicMessages(Wire):
    """A read of a topic that consumes nothing (no group, no commit)."""

    topic: str
    partitions: list[TopicPartitionBounds]
    messages: list[TopicMessage]
    nextFrom: int | None = Field(
        description="with partition and from: the offset to ask next; null at the end"
    )


class DeletedSubscription(Wire):
    id: str
    topic: str
    name: str
    deleted: Literal[True]
