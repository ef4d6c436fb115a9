"""One settings tree for the whole server, read from ``OPSTAGE_*`` environment variables.

Names follow the contract and the reference server (``DATABASE_URL`` keeps the reference's
unprefixed name). ``create_app`` takes a ``Settings`` explicitly; nothing reads the
environment at import time. ``docs/configuration.md`` is generated from this tree.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """The configuration cannot be used; the message says which variable and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSTAGE_", extra="ignore", populate_by_name=True, validate_default=True
    )

    # --- server ---
    host: str = Field("127.0.0.1", description="Address `opstage serve` listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port `opstage serve` listens on.")
    data_dir: Path = Field(
        Path("./data"),
        description="Directory for the SQLite database, the dev-mode secret and backups.",
    )
    database_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_URL", "OPSTAGE_DATABASE_URL"),
        description="SQLAlchemy/reference-style URL: `sqlite:///path.db`, `file:./x.db` or "
        "`postgresql://user:pass@host/db`. Empty: SQLite at `<data_dir>/opstage.db`.",
    )
    dev_mode: bool = Field(
        False,
        description="Development mode: a missing session secret is "
        "generated and persisted under data_dir, and cookies drop `Secure`.",
    )
    version_override: str | None = Field(
        None,
        validation_alias=AliasChoices("OPSTAGE_VERSION"),
        description="Reported version (default: the package version).",
    )
    commit: str | None = Field(None, description="Git commit reported by /api/system/version.")
    build_time: str | None = Field(None, description="Build time reported by /api/system/version.")

    # --- identity and sessions ---
    session_secret: SecretStr | None = Field(
        None,
        description="Key for session and CSRF HMACs; at least 32 characters. Required "
        "outside dev mode.",
    )
    session_ttl_seconds: int = Field(
        28800, gt=0, description="Absolute lifetime of an admin session."
    )
    cookie_secure: bool | None = Field(
        None, description="Force the `Secure` cookie flag on or off (default: on unless dev mode)."
    )
    admin_username: str | None = Field(
        None, description="Username of the owner created on first start when there are no users."
    )
    admin_password: SecretStr | None = Field(
        None,
        description="Password of that owner (12+ characters). Dev mode generates one when "
        "unset and prints it once.",
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins from one address before further attempts are delayed."
    )
    login_lockout_seconds: int = Field(
        60, ge=1, description="Longest delay imposed on an address that keeps failing to log in."
    )

    # --- agents and services ---
    heartbeat_interval_seconds: int = Field(
        30, gt=0, description="Heartbeat interval advertised to agents."
    )
    command_poll_interval_seconds: int = Field(
        5, gt=0, description="Poll interval advertised to agents."
    )
    agent_offline_threshold_seconds: int = Field(
        90,
        gt=0,
        description=(
            "An agent silent for longer is stored OFFLINE by the next sweep; "
            "its services read STALE meanwhile."
        ),
    )
    health_stale_threshold_seconds: int = Field(
        180, gt=0, description="A service whose last report/health is older is STALE."
    )
    long_poll_enabled: bool = Field(
        True,
        description="Offer `waitSeconds` long-polling on the "
        "agent command poll (advertised as a capability).",
    )
    long_poll_max_seconds: int = Field(
        30, ge=1, le=120, description="Upper bound of `waitSeconds`."
    )

    # --- commands ---
    command_result_max_bytes: int = Field(
        1_000_000,
        gt=0,
        description="Largest serialized command result (message+data+error) accepted.",
    )
    command_default_timeout_seconds: int = Field(
        600, gt=0, description="Expiry of a command whose action declares no timeoutSeconds."
    )
    action_prepare_timeout_seconds: float = Field(
        30, gt=0, description="How long a prepare request waits for the agent's answer."
    )
    request_body_max_bytes: int = Field(
        2_000_000, gt=0, description="Largest request body accepted."
    )
    http_header_timeout_seconds: float = Field(
        10,
        gt=0,
        description="A connection that has not sent a complete request head (request line and "
        "headers) this long after it opened or its request began is closed (408).",
    )
    http_body_timeout_seconds: float = Field(
        10,
        gt=0,
        description="A request whose body has not fully arrived this long after its headers is "
        "closed (408). Long-polls and event streams wait on the response side: not cut.",
    )

    # --- background work ---
    maintenance_interval_seconds: int = Field(
        60, ge=0, description="Maintenance sweep period (0 disables the timer)."
    )
    audit_retention_days: int = Field(
        90, ge=0, description="Audit older than this is pruned (0 keeps forever)."
    )
    event_bus_capacity: int = Field(
        1000, ge=1, description="Per-subscriber buffer of the domain event bus."
    )
    gc_full_interval_seconds: float = Field(
        600.0,
        ge=0,
        description="Run the cyclic garbage collector's full pass on this schedule instead of "
        "CPython's (0: CPython's own policy); ADR 0019.",
    )

    # --- Capsule Bus (event → command routing) ---
    capsule_bus_enabled: bool = Field(
        False, description="Turn on the Capsule Bus endpoints (experimental, as in CE v0.4)."
    )
    capsule_bus_ingest_per_min: int = Field(
        60, ge=1, description="Accepted bus events per agent in any 60 s window."
    )
    capsule_bus_max_depth: int = Field(
        1, ge=0, description="Longest causation chain a bus event may extend."
    )
    capsule_bus_idempotency_hours: int = Field(
        24, ge=1, description="How long an Idempotency-Key replays its original response."
    )
    capsule_bus_outcome_events: bool = Field(
        False,
        description="Store outcomes of bus-created commands as bus events caused by the original.",
    )

    # --- topic bus (pub/sub; docs/topics.md) ---
    topic_bus_enabled: bool = Field(
        True, description="Turn on the topic bus (admin topics, agent publish and subscribe)."
    )
    topic_bus_engine: Literal["embedded", "nats", "kafka"] = Field(
        "embedded",
        description="Where topic messages live: `embedded` (a log in Opstage's own database), "
        "`nats` (JetStream at `OPSTAGE_NATS_URL`; needs the `nats` extra) or `kafka` (the "
        "brokers at `OPSTAGE_KAFKA_BOOTSTRAP_SERVERS`; needs the `kafka` extra).",
    )
    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        description="The NATS server of the `nats` topic engine and of `OPSTAGE_EVENT_RELAY=nats`.",
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("OPSTAGE_KAFKA_BOOTSTRAP_SERVERS", "OPSTAGE_KAFKA_BOOTSTRAP"),
        description="The Kafka brokers (`host:port`, comma-separated) of the `kafka` topic engine.",
    )
    kafka_client_id: str = Field(
        "opstage", description="The client id the `kafka` topic engine gives the brokers."
    )
    topic_bus_keepalive_seconds: float = Field(
        15.0, gt=0, le=300, description="Seconds between keep-alive comments on an idle stream."
    )
    topic_publish_rate_per_second: float = Field(
        5000.0,
        ge=0,
        le=1_000_000,
        description="Each agent's topic publish quota: tokens per second of its bucket "
        "(0: no quota). Past it, publishes answer 429 `TOPIC_RATE_LIMITED` with Retry-After.",
    )
    topic_publish_burst: int = Field(
        10000, ge=1, le=10_000_000, description="Each agent's publish bucket size (a burst)."
    )

    # --- logging ---
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="`json` lines, human `text`, or `auto` (text on a terminal)."
    )
    access_log: bool = Field(True, description="One log line per HTTP request.")

    # --- observability: Prometheus /metrics and the live event stream (docs/observability.md) ---
    metrics_enabled: bool = Field(
        True, description="Serve Prometheus metrics at `/metrics` (404 when off)."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, `/metrics` requires `Authorization: Bearer <token>` "
        "(401 otherwise).",
    )
    event_log_retention_hours: float = Field(
        24,
        ge=0,
        description="Domain events older than this are pruned from the durable event log by the "
        "maintenance sweep (0 keeps forever); a live-stream client resuming from before the "
        "pruned history gets an explicit `gap` event.",
    )
    event_stream_keepalive_seconds: float = Field(
        15, gt=0, description="Keep-alive comment interval of `GET /api/admin/events/stream`."
    )
    event_relay: Literal["auto", "nats", "off"] = Field(
        "auto",
        description="How another node's domain events reach this node's live streams at once "
        "(ADR 0016): `auto` (PostgreSQL LISTEN/NOTIFY on a shared PostgreSQL; nothing on "
        "SQLite), `nats` (published and relayed through `OPSTAGE_NATS_URL`, LISTEN/NOTIFY "
        "while NATS is unreachable) or `off` (only the periodic re-read).",
    )
    event_stream_poll_seconds: float = Field(
        2,
        gt=0,
        description="How often a live stream re-reads the event log for events committed by "
        "other processes (other nodes, the CLI); events of this process wake it at once.",
    )

    # --- operations: backup and restore (docs/operations.md) ---
    backup_dir: Path | None = Field(
        None,
        description="Directory where `POST /api/admin/backup/sqlite` and `opstage backup` write "
        "SQLite backups (default: `<data_dir>/backups`).",
    )

    # --- console (packages/opstage/src/opstage/api/console.py) ---
    static_dir: Path | None = Field(
        None,
        description="Directory of the built admin console served at `/` (default: the build "
        "inside the package, `opstage/console/dist`, made by `make console`).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'opstage.db').as_posix()}"
        return self

    # ---------------------------------------------------------------------------------------
    def resolve_secrets(self) -> Settings:
        """Fail closed on a weak session secret; in dev mode generate and persist one."""
        secret = self.session_secret.get_secret_value() if self.session_secret else ""
        if len(secret) >= MIN_SECRET_LENGTH:
            return self
        if not self.dev_mode:
            if not secret:
                raise SettingsError(
                    "OPSTAGE_SESSION_SECRET is required (at least 32 characters). "
                    "Set it, or run with OPSTAGE_DEV_MODE=true for local development."
                )
            raise SettingsError(
                f"OPSTAGE_SESSION_SECRET must be at least {MIN_SECRET_LENGTH} characters "
                f"(got {len(secret)})."
            )
        if secret:
            raise SettingsError(
                f"OPSTAGE_SESSION_SECRET must be at least {MIN_SECRET_LENGTH} characters, even "
                "in dev mode; unset it to have one generated."
            )
        path = self.data_dir / ".session-secret"
        if path.exists():
            secret = path.read_text().strip()
        if len(secret) < MIN_SECRET_LENGTH:
            path.parent.mkdir(parents=True, exist_ok=True)
            secret = secrets.token_urlsafe(48)
            path.write_text(secret + "\n")
            path.chmod(0o600)
        return self.model_copy(update={"session_secret": SecretStr(secret)})

    @property
    def secret_bytes(self) -> bytes:
        if self.session_secret is None:
            raise SettingsError("session secret not resolved")
        return self.session_secret.get_secret_value().encode()

    @property
    def secure_cookies(self) -> bool:
        return (not self.dev_mode) if self.cookie_secure is None else self.cookie_secure

    def masked(self) -> dict[str, Any]:
        """Effective settings with secrets and database passwords masked."""
        from opstage.domain.redaction import mask_url

        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif name == "database_url":
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out
