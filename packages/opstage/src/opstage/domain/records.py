"""The records that cross the app↔store seam: one ``TypedDict`` per stored row shape (ADR 0011).

Keys are the columns' snake_case names (``store/tables.py``); the wire's camelCase exists only
in ``api/views.py``. ``TypedDict`` keeps subscript access and costs nothing at run time (a row
is the dict the driver built), while mypy checks every key and value a use case touches.

``…Changes`` are the partial rows an ``update`` takes (any subset of the columns). JSON columns
hold JSON (``Json``): what is inside is the contract's free-form data, checked where it is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Required, TypedDict

Json = Any  # a JSON column's value: object, array, scalar or null
JsonObject = dict[str, Any]


# --- users and sessions ---------------------------------------------------------------------
class UserProfile(TypedDict):
    """What may be shown of a user (a session carries it): no credentials."""

    id: str
    username: str
    display_name: str | None
    role: str
    status: str
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserRow(UserProfile):
    username_key: str
    password_hash: str


class UserChanges(TypedDict, total=False):
    username: str
    username_key: str
    display_name: str | None
    role: str
    status: str
    password_hash: str
    last_login_at: datetime | None
    updated_at: datetime


class SessionRow(TypedDict):
    id: str
    token_hash: str
    user_id: str
    csrf_token: str
    ip: str | None
    user_agent: str | None
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


class SessionWithUser(SessionRow):
    """A session joined with its user (``SessionRepo.by_token_hash``)."""

    username: str
    display_name: str | None
    role: str
    user_status: str
    last_login_at: datetime | None
    user_created_at: datetime
    user_updated_at: datetime


class SessionChanges(TypedDict, total=False):
    csrf_token: str
    ip: str | None
    user_agent: str | None
    expires_at: datetime
    last_seen_at: datetime


# --- registration tokens, agents and their bearer tokens -------------------------------------
class RegistrationTokenRow(TypedDict):
    id: str
    name: str
    token_hash: str
    status: str
    agent_code: str | None
    created_by_user_id: str | None
    used_by_agent_id: str | None
    topic_tenants: list[str] | None
    expires_at: datetime | None
    used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RegistrationTokenChanges(TypedDict, total=False):
    name: str
    status: str
    used_by_agent_id: str | None
    used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    updated_at: datetime


class AgentRow(TypedDict):
    id: str
    code: str
    name: str | None
    mode: str
    runtime: str | None
    status: str
    last_heartbeat_at: datetime | None
    topic_tenants: list[str] | None
    created_at: datetime
    updated_at: datetime


class AgentChanges(TypedDict, total=False):
    name: str | None
    mode: str
    runtime: str | None
    status: str
    last_heartbeat_at: datetime | None
    topic_tenants: list[str] | None
    updated_at: datetime


class AgentTokenRow(TypedDict):
    id: str
    agent_id: str
    token_hash: str
    status: str
    registration_token_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class AgentCredential(TypedDict):
    """An agent token joined with its agent: what bearer authentication reads."""

    token_id: str
    token_status: str
    agent_id: str
    agent_status: str
    agent_code: str


class AgentContact(TypedDict):
    """What the heartbeat batch reads of an agent (``AgentRepo.statuses``)."""

    id: str
    status: str
    last_heartbeat_at: datetime | None


class AgentStatusRow(TypedDict):
    id: str
    status: str


class DatabaseInfo(TypedDict, total=False):
    """The database's engine, version and size (``wal_size_bytes``: SQLite in WAL mode)."""

    kind: Required[str]
    server_version: Required[str | None]
    size_bytes: Required[int]
    wal_size_bytes: int


class StaleAgent(TypedDict):
    id: str
    code: str
    name: str | None
    status: str
    last_heartbeat_at: datetime | None
    created_at: datetime


# --- Capsule Services, their configs and actions ---------------------------------------------
class ServiceRow(TypedDict):
    id: str
    agent_id: str
    code: str
    name: str
    description: str | None
    version: str | None
    runtime: str | None
    manifest: JsonObject
    status: str
    health_status: str
    health_message: str | None
    health_details: Json
    health_report_id: str | None
    last_reported_at: datetime | None
    last_health_at: datetime | None
    retired_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ServiceWithAgent(ServiceRow):
    """A service joined with its agent's liveness (what its effective status needs)."""

    agent_status: str
    agent_last_heartbeat_at: datetime | None
    agent_created_at: datetime


class ServiceChanges(TypedDict, total=False):
    agent_id: str
    name: str
    description: str | None
    version: str | None
    runtime: str | None
    manifest: JsonObject
    status: str
    health_status: str
    health_message: str | None
    health_details: Json
    health_report_id: str | None
    last_reported_at: datetime | None
    last_health_at: datetime | None
    retired_at: datetime | None
    updated_at: datetime


class ServiceHealth(TypedDict):
    id: str
    agent_id: str
    health_status: str
    health_message: str | None
    health_details: Json


class HealthUpdate(TypedDict):
    """One service's new health, written by ``ServiceRepo.set_health_many``."""

    id: str
    health_status: str
    health_message: str | None
    health_details: Json
    at: datetime


class ServiceStatusRow(TypedDict):
    id: str
    agent_id: str
    status: str


class ServiceHealthStatus(TypedDict):
    id: str
    health_status: str


class ConfigItemRow(TypedDict):
    id: str
    service_id: str
    position: int
    key: str
    label: str | None
    type: str
    source: str | None
    editable: bool
    sensitive: bool
    value_preview: str | None
    default_value: str | None
    secret_ref: str | None


class ActionRow(TypedDict):
    """A declared action (``action_definitions``)."""

    id: str
    service_id: str
    position: int
    name: str
    label: str
    description: str | None
    danger_level: str
    requires_confirmation: bool
    input_schema: JsonObject | None
    timeout_seconds: int | None
    enabled: bool
    extra: JsonObject | None
    created_at: datetime
    updated_at: datetime


# --- commands and their results ---------------------------------------------------------------
class CommandRow(TypedDict):
    id: str
    agent_id: str
    service_id: str
    type: str
    action_name: str
    status: str
    payload: JsonObject
    confirmed: bool
    created_by_user_id: str | None
    retry_of_command_id: str | None
    bus_event_id: str | None
    bus_route_id: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None


class CommandChanges(TypedDict, total=False):
    status: str
    payload: JsonObject
    error_code: str | None
    error_message: str | None
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None


class CommandResultRow(TypedDict):
    id: str
    command_id: str
    success: bool
    message: str | None
    data: Json
    error: Json
    agent_started_at: datetime | None
    agent_finished_at: datetime | None
    reported_at: datetime


# --- audit -------------------------------------------------------------------------------------
class AuditRow(TypedDict):
    id: str
    created_at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    result: str
    message: str | None
    metadata: JsonObject | None
    request_id: str | None


# --- Capsule Bus -------------------------------------------------------------------------------
class BusRouteRow(TypedDict):
    id: str
    name: str
    description: str | None
    status: str
    event_type: str
    source_service_code: str | None
    target_service_code: str
    target_action_name: str
    input_mapping: JsonObject
    filters: Json
    metadata: JsonObject
    pre_approved: bool
    pre_approved_by_user_id: str | None
    pre_approved_at: datetime | None
    created_at: datetime
    updated_at: datetime


class BusRouteChanges(TypedDict, total=False):
    name: str
    description: str | None
    status: str
    event_type: str
    source_service_code: str | None
    target_service_code: str
    target_action_name: str
    input_mapping: JsonObject
    filters: Json
    metadata: JsonObject
    pre_approved: bool
    pre_approved_by_user_id: str | None
    pre_approved_at: datetime | None
    updated_at: datetime


class BusEventRow(TypedDict):
    id: str
    agent_id: str
    source_service_id: str
    source_service_code: str
    event_type: str
    payload: JsonObject
    metadata: JsonObject
    correlation_id: str | None
    causation_id: str | None
    depth: int
    dry_run: bool
    route_count: int
    idempotency_key: str | None
    response: JsonObject | None
    occurred_at: datetime | None
    accepted_at: datetime


@dataclass
class RoutingReferences:
    """What routing a batch of events reads, fetched in one hand-off (store/driver.py)."""

    services_by_code: dict[str, ServiceWithAgent | None] = field(default_factory=dict)
    routes_by_type: dict[str, list[BusRouteRow]] = field(default_factory=dict)
    actions: dict[tuple[str, str], ActionRow | None] = field(default_factory=dict)
    agents: dict[str, AgentRow | None] = field(default_factory=dict)
    events: dict[str, BusEventRow | None] = field(default_factory=dict)


# --- the durable domain-event log -------------------------------------------------------------
class EventLogRow(TypedDict):
    id: int
    kind: str
    data: JsonObject
    created_at: datetime
