"""The SDK's own wire models, written from ``opstage-ce-v0.1.yaml`` — never the server's code.

Request bodies are ``TypedDict``s (they are JSON objects and nothing more); what the SDK reads
back is parsed into frozen dataclasses by ``from_wire`` functions that accept extra fields
(forward compatibility) and raise :class:`ServerError` when a required one is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict, cast

from opstage_agent.errors import ServerError

HealthStatus = Literal["UP", "DEGRADED", "DOWN", "UNKNOWN"]
DangerLevel = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
CommandType = Literal["ACTION_EXECUTE", "ACTION_PREPARE"]
HEALTH_STATUSES: frozenset[str] = frozenset({"UP", "DEGRADED", "DOWN", "UNKNOWN"})
DANGER_LEVELS: frozenset[str] = frozenset({"LOW", "MEDIUM", "HIGH", "CRITICAL"})

JSONObject = dict[str, Any]


# --- request bodies ------------------------------------------------------------------------


class HealthBody(TypedDict):
    status: HealthStatus
    message: NotRequired[str]
    details: NotRequired[JSONObject]


class ConfigItemBody(TypedDict):
    key: str
    type: str
    label: NotRequired[str]
    source: NotRequired[str]
    editable: NotRequired[bool]
    sensitive: NotRequired[bool]
    valuePreview: NotRequired[str]
    defaultValue: NotRequired[str]
    secretRef: NotRequired[str]


class ActionDefinitionBody(TypedDict):
    name: str
    label: str
    description: NotRequired[str]
    dangerLevel: NotRequired[DangerLevel]
    requiresConfirmation: NotRequired[bool]
    inputSchema: NotRequired[JSONObject]
    outputSchema: NotRequired[JSONObject]
    timeoutSeconds: NotRequired[int]


class ManifestBody(TypedDict):
    kind: Literal["CapsuleService"]
    schemaVersion: str
    code: str
    name: str
    version: str
    runtime: str
    agentMode: str
    description: NotRequired[str]
    capabilities: NotRequired[list[str]]
    labels: NotRequired[dict[str, str]]


class ReportedServiceBody(TypedDict):
    code: str
    name: str
    manifest: ManifestBody
    description: NotRequired[str]
    version: NotRequired[str]
    runtime: NotRequired[str]
    health: NotRequired[HealthBody]
    configs: NotRequired[list[ConfigItemBody]]
    actions: NotRequired[list[ActionDefinitionBody]]


class AgentIdentityBody(TypedDict):
    code: str
    name: str
    mode: Literal["embedded", "ophub"]  # ophub: added to the v0.1 contract by the Capsule Bus
    runtime: str
    version: NotRequired[str]


class RegisterBody(TypedDict):
    registrationToken: str
    agent: AgentIdentityBody
    service: NotRequired[ReportedServiceBody]


class HeartbeatBody(TypedDict, total=False):
    health: HealthBody
    serviceId: str


class ServiceReportBody(TypedDict):
    services: list[ReportedServiceBody]


class ErrorBody(TypedDict):
    code: str
    message: str
    details: NotRequired[JSONObject]


class CommandResultBody(TypedDict):
    success: bool
    startedAt: str
    finishedAt: str
    message: NotRequired[str]
    data: NotRequired[JSONObject]
    error: NotRequired[ErrorBody]


class BusEventBody(TypedDict):
    eventType: str
    sourceServiceCode: str
    payload: JSONObject
    metadata: NotRequired[JSONObject]
    correlationId: NotRequired[str]
    causationId: NotRequired[str]
    occurredAt: NotRequired[str]
    routePolicy: NotRequired[JSONObject]


# --- values the developer hands to the SDK ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    """What ``@agent.health`` returns (a bare status string or a bool works too)."""

    status: HealthStatus
    message: str | None = None
    details: JSONObject | None = None

    def __post_init__(self) -> None:
        if self.status not in HEALTH_STATUSES:
            raise ValueError(f"health status must be one of {sorted(HEALTH_STATUSES)}")

    @classmethod
    def up(cls, message: str | None = None, **details: Any) -> Health:
        return cls("UP", message, details or None)

    @classmethod
    def degraded(cls, message: str | None = None, **details: Any) -> Health:
        return cls("DEGRADED", message, details or None)

    @classmethod
    def down(cls, message: str | None = None, **details: Any) -> Health:
        return cls("DOWN", message, details or None)

    def to_wire(self) -> HealthBody:
        body: HealthBody = {"status": self.status}
        if self.message is not None:
            body["message"] = self.message
        if self.details:
            body["details"] = self.details
        return body


@dataclass(frozen=True, slots=True)
class ConfigItem:
    """One configuration value the service runs with, shown (never edited) in the console.

    A ``sensitive`` item is declared without its value: the SDK never sends it.
    """

    key: str
    value_preview: str | None = None
    type: str = "string"
    label: str | None = None
    source: str | None = None
    editable: bool = False
    sensitive: bool = False
    default_value: str | None = None
    secret_ref: str | None = None

    def to_wire(self) -> ConfigItemBody:
        body: ConfigItemBody = {"key": self.key, "type": self.type}
        if self.label is not None:
            body["label"] = self.label
        if self.source is not None:
            body["source"] = self.source
        body["editable"] = self.editable
        body["sensitive"] = self.sensitive
        if not self.sensitive:
            if self.value_preview is not None:
                body["valuePreview"] = self.value_preview
            if self.default_value is not None:
                body["defaultValue"] = self.default_value
        if self.secret_ref is not None:
            body["secretRef"] = self.secret_ref
        return body


# --- what the server sends back -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Server features beyond the v0.1 contract; absent on the reference server."""

    long_poll: bool = False
    long_poll_max_seconds: float = 0.0

    @classmethod
    def from_wire(cls, raw: Any) -> Capabilities:
        if not isinstance(raw, dict):
            return cls()
        max_seconds = raw.get("longPollMaxSeconds")
        return cls(
            long_poll=raw.get("longPoll") is True,
            long_poll_max_seconds=float(max_seconds)
            if isinstance(max_seconds, int | float) and max_seconds > 0
            else 0.0,
        )


@dataclass(frozen=True, slots=True)
class Timing:
    """The intervals the server advertises (None when it does not)."""

    heartbeat_interval_seconds: float | None = None
    command_poll_interval_seconds: float | None = None

    @classmethod
    def from_wire(cls, data: JSONObject) -> Timing:
        return cls(
            _positive_number(data.get("heartbeatIntervalSeconds")),
            _positive_number(data.get("commandPollIntervalSeconds")),
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    agent_id: str
    agent_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Registration:
    credentials: Credentials
    timing: Timing
    capabilities: Capabilities
    # The id of the service registered with the agent; Opstage answers it, the reference
    # server does not (then the SDK learns it from a report).
    service_id: str | None = None

    @classmethod
    def from_wire(cls, data: Any) -> Registration:
        obj = _object(data, "register")
        agent_id = _string(obj, "agentId", "register")
        token = _string(obj, "agentToken", "register")
        service_id = obj.get("serviceId")
        return cls(
            Credentials(agent_id, token),
            Timing.from_wire(obj),
            Capabilities.from_wire(obj.get("capabilities")),
            service_id if isinstance(service_id, str) and service_id else None,
        )


@dataclass(frozen=True, slots=True)
class HeartbeatAck:
    timing: Timing
    capabilities: Capabilities

    @classmethod
    def from_wire(cls, data: Any) -> HeartbeatAck:
        obj = data if isinstance(data, dict) else {}
        return cls(Timing.from_wire(obj), Capabilities.from_wire(obj.get("capabilities")))


@dataclass(frozen=True, slots=True)
class Command:
    """A command claimed by this agent (the server has marked it RUNNING)."""

    id: str
    type: str
    action_name: str
    payload: JSONObject
    service_id: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_wire(cls, raw: Any) -> Command:
        obj = _object(raw, "commands")
        payload = obj.get("payload")
        service_id = obj.get("serviceId")
        return cls(
            id=_string(obj, "id", "commands"),
            type=_string(obj, "type", "commands"),
            action_name=_string(obj, "actionName", "commands"),
            payload=payload if isinstance(payload, dict) else {},
            service_id=service_id if isinstance(service_id, str) else None,
            expires_at=parse_time(obj.get("expiresAt")),
        )


def commands_from_wire(data: Any) -> list[Command]:
    if not isinstance(data, list):
        raise ServerError("Opstage answered the command poll without a list of commands")
    return [Command.from_wire(item) for item in data]


def service_ids_from_wire(data: Any) -> dict[str, str]:
    """code → service id, from the report response (missing on old servers: empty)."""
    services = data.get("services") if isinstance(data, dict) else None
    out: dict[str, str] = {}
    for item in services if isinstance(services, list) else []:
        if (
            isinstance(item, dict)
            and isinstance(item.get("code"), str)
            and isinstance(item.get("id"), str)
        ):
            out[item["code"]] = item["id"]
    return out


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """The Capsule Bus's answer to ``publish_event``."""

    event_id: str
    routed_commands: list[JSONObject]
    replay: bool = False

    @classmethod
    def from_wire(cls, data: Any) -> PublishedEvent:
        obj = _object(data, "bus event")
        routed = obj.get("routedCommands")
        return cls(
            event_id=_string(obj, "eventId", "bus event"),
            routed_commands=[r for r in routed if isinstance(r, dict)]
            if isinstance(routed, list)
            else [],
            replay=obj.get("replay") is True,
        )


@dataclass(frozen=True, slots=True)
class TopicReceipt:
    """The topic bus's answer to ``publish``: where the message was stored, durably."""

    topic: str
    partition: int
    offset: int
    produced_at: str  # ISO-8601, as the server wrote it
    replayed: bool = False  # an Idempotency-Key the server had seen: the first receipt

    @classmethod
    def from_wire(cls, data: Any, *, replayed: bool = False) -> TopicReceipt:
        obj = _object(data, "topic publish")
        partition, offset = obj.get("partition"), obj.get("offset")
        if not isinstance(partition, int) or not isinstance(offset, int):
            raise ServerError("Opstage's topic publish response has no partition/offset")
        return cls(
            topic=_string(obj, "topic", "topic publish"),
            partition=partition,
            offset=offset,
            produced_at=_string(obj, "produced_at", "topic publish"),
            replayed=replayed,
        )


@dataclass(frozen=True, slots=True)
class TopicMessage:
    """One message from a topic subscription; ``id`` (``partition:offset``) resumes after it."""

    topic: str
    partition: int
    offset: int
    payload: Any
    key: str | None
    headers: dict[str, str]
    timestamp: str

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @classmethod
    def from_wire(cls, data: Any) -> TopicMessage:
        obj = _object(data, "topic message")
        partition, offset = obj.get("partition"), obj.get("offset")
        if not isinstance(partition, int) or not isinstance(offset, int):
            raise ServerError("Opstage's topic message has no partition/offset")
        headers = obj.get("headers")
        key = obj.get("key")
        return cls(
            topic=_string(obj, "topic", "topic message"),
            partition=partition,
            offset=offset,
            payload=obj.get("payload"),
            key=key if isinstance(key, str) else None,
            headers=dict(headers) if isinstance(headers, dict) else {},
            timestamp=_string(obj, "timestamp", "topic message"),
        )


# --- helpers ---------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z``, as the contract's examples write it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive_number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        return None
    return float(raw)


def _object(raw: Any, what: str) -> JSONObject:
    if not isinstance(raw, dict):
        raise ServerError(f"Opstage's {what} response is not an object")
    return cast(JSONObject, raw)


def _string(obj: JSONObject, key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ServerError(f"Opstage's {what} response has no {key!r}")
    return value
