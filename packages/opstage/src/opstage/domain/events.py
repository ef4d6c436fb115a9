"""Typed domain events: one class per state change worth reacting to.

Each carries identifiers and the new state, never secrets. ``kind`` is the stable wire name
used by the live stream and metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class DomainEvent:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True)
class AgentRegistered(DomainEvent):
    kind: ClassVar[str] = "agent.registered"
    agent_id: str
    code: str
    rotated: bool


@dataclass(frozen=True, slots=True)
class AgentStatusChanged(DomainEvent):
    kind: ClassVar[str] = "agent.status_changed"
    agent_id: str
    from_status: str
    to_status: str


@dataclass(frozen=True, slots=True)
class AgentCredentialsChanged(DomainEvent):
    """The agent's token was rotated or its standing changed: auth caches must forget it."""

    kind: ClassVar[str] = "agent.credentials_changed"
    agent_id: str


@dataclass(frozen=True, slots=True)
class ServiceReported(DomainEvent):
    kind: ClassVar[str] = "service.reported"
    service_id: str
    agent_id: str
    code: str


@dataclass(frozen=True, slots=True)
class ServiceHealthChanged(DomainEvent):
    kind: ClassVar[str] = "service.health_changed"
    service_id: str
    from_status: str
    to_status: str


@dataclass(frozen=True, slots=True)
class CommandCreated(DomainEvent):
    kind: ClassVar[str] = "command.created"
    command_id: str
    agent_id: str
    service_id: str
    type: str
    action_name: str


@dataclass(frozen=True, slots=True)
class CommandStatusChanged(DomainEvent):
    kind: ClassVar[str] = "command.status_changed"
    command_id: str
    agent_id: str
    type: str
    action_name: str
    status: str


@dataclass(frozen=True, slots=True)
class RegistrationTokenChanged(DomainEvent):
    kind: ClassVar[str] = "registration_token.changed"
    token_id: str
    status: str


@dataclass(frozen=True, slots=True)
class AuditRecorded(DomainEvent):
    kind: ClassVar[str] = "audit.recorded"
    audit_id: str
    action: str
    result: str
    target_type: str | None
    target_id: str | None


@dataclass(frozen=True, slots=True)
class UserChanged(DomainEvent):
    kind: ClassVar[str] = "user.changed"
    user_id: str
    change: str


@dataclass(frozen=True, slots=True)
class BusEventAccepted(DomainEvent):
    kind: ClassVar[str] = "bus.event.accepted"
    event_id: str
    event_type: str
    agent_id: str
    route_count: int


@dataclass(frozen=True, slots=True)
class BusRouteChanged(DomainEvent):
    kind: ClassVar[str] = "bus.route.changed"
    route_id: str
    change: str


@dataclass(frozen=True, slots=True)
class ServiceStatusChanged(DomainEvent):
    """A service's effective status moved without a report (its agent went OFFLINE)."""

    kind: ClassVar[str] = "service.status_changed"
    service_id: str
    agent_id: str
    from_status: str
    to_status: str


@dataclass(frozen=True, slots=True)
class TopicChanged(DomainEvent):
    """A topic-bus topic was created, deleted, or its creation rolled back."""

    kind: ClassVar[str] = "topic.changed"
    topic_id: str
    topic: str
    change: str


@dataclass(frozen=True, slots=True)
class SubscriptionChanged(DomainEvent):
    """A durable topic subscription was created or deleted, its lag changed (an ack), or a
    message of it went to its DLQ (ADR 0015). ``lag``: its total lag after the change."""

    kind: ClassVar[str] = "topic.subscription_changed"
    subscription_id: str
    topic: str
    name: str
    change: str  # created | deleted | lag_changed | dlq
    lag: int | None = None


@cache
def event_types() -> dict[str, type[DomainEvent]]:
    """Every event class by its wire ``kind``: to rebuild events another node relayed."""
    return {cls.kind: cls for cls in DomainEvent.__subclasses__()}


def from_wire(kind: str, data: dict[str, Any]) -> DomainEvent | None:
    """The event ``kind`` with ``data`` (its fields), or None for a kind or shape this
    version does not know (a node of another version)."""
    cls = event_types().get(kind)
    if cls is None:
        return None
    try:
        return cls(**data)
    except TypeError:
        return None
