"""SQLAlchemy Core tables: the one schema both SQLite and PostgreSQL run.

Timestamps are stored as UTC and always read back timezone-aware (``UtcDateTime``); JSON
columns hold already-redacted data. The Alembic chain in ``store/migrations`` creates exactly
this schema (a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

ID = String(32)


def _ts(name: str, nullable: bool = True) -> Column[Any]:
    return Column(name, UtcDateTime(), nullable=nullable)


users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(320), nullable=False, unique=True),
    # NFKC_Casefold of the name (domain.identity.username_key): unique, so ``ADMIN`` and
    # ``admin `` cannot sit next to ``admin``; login looks users up by it.
    Column("username_key", String(320), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("role", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    _ts("last_login_at"),
    _ts("created_at", False),
    _ts("updated_at", False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(300)),
    _ts("created_at", False),
    _ts("expires_at", False),
    _ts("last_seen_at", False),
)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("agent_code", String(120)),
    Column("created_by_user_id", ID),
    Column("used_by_agent_id", ID),
    # Topic-bus tenants the agent registered with this token may use (null: the default).
    Column("topic_tenants", JSON),
    _ts("expires_at"),
    _ts("used_at"),
    _ts("revoked_at"),
    _ts("created_at", False),
    _ts("updated_at", False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("code", String(120), nullable=False, unique=True),
    Column("name", String(200)),
    Column("mode", String(16), nullable=False),
    Column("runtime", String(40)),
    Column("status", String(16), nullable=False, index=True),
    _ts("last_heartbeat_at"),
    Column("topic_tenants", JSON),  # copied from its registration token; null: the default
    _ts("created_at", False),
    _ts("updated_at", False),
)

agent_tokens = Table(
    "agent_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("agent_id", ID, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("registration_token_id", ID),
    _ts("created_at", False),
    _ts("revoked_at"),
)

capsule_services = Table(
    "capsule_services",
    metadata,
    Column("id", ID, primary_key=True),
    Column("agent_id", ID, ForeignKey("agents.id"), nullable=False, index=True),
    Column("code", String(80), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("version", String(80)),
    Column("runtime", String(40)),
    Column("manifest", JSON, nullable=False),
    # Stored status (the reference's): from health reports; STALE once its agent went OFFLINE.
    Column("status", String(16), nullable=False, server_default="UNKNOWN"),
    Column("health_status", String(16), nullable=False),
    Column("health_message", Text),
    Column("health_details", JSON),
    Column("health_report_id", ID),
    _ts("last_reported_at"),
    _ts("last_health_at"),
    _ts("retired_at"),
    _ts("created_at", False),
    _ts("updated_at", False),
)

config_items = Table(
    "config_items",
    metadata,
    Column("id", ID, primary_key=True),
    Column("service_id", ID, ForeignKey("capsule_services.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("key", String(200), nullable=False),
    Column("label", String(200)),
    Column("type", String(40), nullable=False),
    Column("source", String(200)),
    Column("editable", Boolean, nullable=False),
    Column("sensitive", Boolean, nullable=False),
    Column("value_preview", Text),
    Column("default_value", Text),
    Column("secret_ref", String(300)),
    UniqueConstraint("service_id", "key"),
)

action_definitions = Table(
    "action_definitions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("service_id", ID, ForeignKey("capsule_services.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(120), nullable=False),
    Column("label", String(200), nullable=False),
    Column("description", Text),
    Column("danger_level", String(16), nullable=False),
    Column("requires_confirmation", Boolean, nullable=False),
    Column("input_schema", JSON),
    Column("timeout_seconds", Integer),
    Column("enabled", Boolean, nullable=False),
    Column("extra", JSON),
    _ts("created_at", False),
    _ts("updated_at", False),
    UniqueConstraint("service_id", "name"),
)

commands = Table(
    "commands",
    metadata,
    Column("id", ID, primary_key=True),
    Column("agent_id", ID, ForeignKey("agents.id"), nullable=False),
    Column("service_id", ID, ForeignKey("capsule_services.id"), nullable=False, index=True),
    Column("type", String(20), nullable=False),
    Column("action_name", String(120), nullable=False),
    Column("status", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("created_by_user_id", ID),
    Column("retry_of_command_id", ID),
    # Set when the Capsule Bus created the command (same transaction as the event).
    Column("bus_event_id", ID, ForeignKey("bus_events.id")),
    Column("bus_route_id", ID),
    Column("error_code", String(80)),
    Column("error_message", Text),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("started_at"),
    _ts("completed_at"),
    _ts("expires_at"),
    Index("ix_commands_agent_status_created", "agent_id", "status", "created_at"),
    Index("ix_commands_status_expires", "status", "expires_at"),
    Index("ix_commands_created_at", "created_at"),
)

command_results = Table(
    "command_results",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "command_id",
        ID,
        ForeignKey("commands.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("success", Boolean, nullable=False),
    Column("message", Text),
    Column("data", JSON),
    Column("error", JSON),
    _ts("agent_started_at"),
    _ts("agent_finished_at"),
    _ts("reported_at", False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True),
    _ts("created_at", False),
    Column("actor_type", String(16), nullable=False),
    Column("actor_id", String(64)),
    Column("action", String(80), nullable=False),
    Column("target_type", String(40)),
    Column("target_id", String(160)),
    Column("result", String(16), nullable=False),
    Column("message", Text),
    Column("metadata", JSON),
    Column("request_id", String(64)),
    Index("ix_audit_events_created_at", "created_at"),
    Index("ix_audit_events_target", "target_type", "target_id"),
    Index("ix_audit_events_action", "action"),
)

system_settings = Table(
    "system_settings",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("value", JSON, nullable=False),
    _ts("updated_at", False),
)

bus_routes = Table(
    "bus_routes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("status", String(16), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("source_service_code", String(80)),
    Column("target_service_code", String(80), nullable=False),
    Column("target_action_name", String(120), nullable=False),
    Column("input_mapping", JSON, nullable=False),
    Column("filters", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("pre_approved", Boolean, nullable=False),
    Column("pre_approved_by_user_id", ID),
    _ts("pre_approved_at"),
    _ts("created_at", False),
    _ts("updated_at", False),
    Index("ix_bus_routes_event_type_created", "event_type", "created_at"),
)

bus_events = Table(
    "bus_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("agent_id", ID, ForeignKey("agents.id"), nullable=False),
    Column("source_service_id", ID, nullable=False),
    Column("source_service_code", String(80), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("correlation_id", String(200)),
    Column("causation_id", String(200)),
    Column("depth", Integer, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("route_count", Integer, nullable=False),
    Column("idempotency_key", String(200)),
    Column("response", JSON),
    _ts("occurred_at"),
    _ts("accepted_at", False),
    Index("ix_bus_events_accepted_at", "accepted_at"),
    Index("ix_bus_events_event_type_accepted", "event_type", "accepted_at"),
    Index("ix_bus_events_agent_accepted", "agent_id", "accepted_at"),
    UniqueConstraint("agent_id", "idempotency_key"),
)

# The durable domain-event log (observability): every DomainEvent a committed unit of work
# recorded, written in that same transaction. ``id`` is the live stream's SSE id, so it must
# never be reused: AUTOINCREMENT on SQLite (rowids would restart after a full prune), BIGSERIAL
# on PostgreSQL. Pruned by age in the maintenance sweep (OPSTAGE_EVENT_LOG_RETENTION_HOURS).
domain_event_log = Table(
    "domain_event_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("kind", String(80), nullable=False),
    Column("data", JSON, nullable=False),
    _ts("created_at", False),
    Index("ix_domain_event_log_created_at", "created_at"),
    sqlite_autoincrement=True,
)

# --- topic bus (issue 18) ----------------------------------------------------------------------
# Opstage's state rows: one per registered topic. The engine's own data (below, or NATS/Kafka)
# is written second and has no foreign key to these rows: the two are a dual write
# (app/topics.py), and an engine topic without a row here is never adopted.
topics = Table(
    "topics",
    metadata,
    Column("id", ID, primary_key=True),
    Column("namespace", String(80), nullable=False),
    Column("tenant", String(80), nullable=False, index=True),
    Column("name", String(80), nullable=False),
    Column("wire_name", String(242), nullable=False, unique=True),
    Column("partitions", Integer, nullable=False),
    Column("replication", Integer, nullable=False),
    Column("retention_ms", BigInteger),
    Column("description", Text),
    Column("labels", JSON, nullable=False),
    Column("created_by", ID),
    _ts("created_at", False),
    # Every publish to this topic is audited (ADR 0015).
    Column("audit_publish", Boolean, nullable=False, server_default=false()),
)

# The embedded engine (store/topic_engine.py): a topic exists in the engine when it has rows
# here; ``next_offset`` is each partition's offset allocator, bumped under the row's lock.
topic_partitions = Table(
    "topic_partitions",
    metadata,
    Column("topic", String(242), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    _ts("created_at", False),
)

# The embedded engine's log: one row per acknowledged message, written before the answer.
# ``idempotency_key`` is scoped to its publisher by the caller (``agentId:key``).
topic_log = Table(
    "topic_log",
    metadata,
    Column("topic", String(242), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("key", Text),
    Column("payload", JSON, nullable=False),
    Column("headers", JSON),
    Column("idempotency_key", String(300)),
    _ts("produced_at", False),
    UniqueConstraint("topic", "idempotency_key"),
)

# Durable subscriptions (ADR 0015): a consumer group whose committed offsets live here, in
# Opstage's database, whatever the engine. ``name`` is the SSE path's subscription id.
topic_subscriptions = Table(
    "topic_subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("topic_id", ID, ForeignKey("topics.id", ondelete="CASCADE"), nullable=False),
    Column("topic", String(242), nullable=False),
    Column("tenant", String(80), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("max_deliveries", Integer),
    Column("dlq_topic", String(242)),
    Column("created_by", ID),
    _ts("created_at", False),
    UniqueConstraint("topic", "name"),
)

# Per partition: the next offset the subscription reads, and how many durable streams started
# at that offset since it last moved (max deliveries → DLQ).
topic_subscription_offsets = Table(
    "topic_subscription_offsets",
    metadata,
    Column(
        "subscription_id",
        ID,
        ForeignKey("topic_subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("partition", Integer, primary_key=True),
    Column("committed", BigInteger, nullable=False),
    Column("deliveries", Integer, nullable=False),
    _ts("updated_at", False),
)
