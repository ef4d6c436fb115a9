"""The application context: built once by the runtime, it satisfies every use case's narrow
protocol (``UnitContext`` and the ones built on it in each use case's module, ADR 0010)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from opstage.app.bus_window import IngestWindows
from opstage.app.eventbus import DomainEventBus
from opstage.app.outcomes import CommandOutcomes
from opstage.app.pauses import PauseStats
from opstage.app.ports import LeaderLock, UnitOfWork, UnitOfWorkFactory
from opstage.domain.timeutil import utcnow
from opstage.settings import Settings

if TYPE_CHECKING:
    from opstage.app.agents import AgentAuthCache
    from opstage.app.auth import LoginThrottle
    from opstage.app.backup import DatabaseBackup
    from opstage.app.heartbeats import HeartbeatWriter
    from opstage.app.secrets_once import OneTimeSecrets
    from opstage.app.topics import TopicBus
    from opstage.app.waiters import Waiters


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, for audit rows: a user, an agent, or the system."""

    type: str  # USER | AGENT | SYSTEM
    id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    role: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("SYSTEM")


class UnitContext(Protocol):
    """What most use cases need: settings (read live: they may be overridden at runtime), the
    clock and units of work. A use case that needs no more takes this, not ``AppContext``
    (ADR 0010); ``AppContext`` satisfies it."""

    settings: Settings

    def clock(self) -> datetime: ...
    def reader(self) -> UnitOfWork: ...
    def writer(self) -> UnitOfWork: ...


class BusIngest(Protocol):
    """The group-commit writer of Capsule Bus publishes (``app/bus_batch.py``), as the rest of
    the application sees it: not imported, so that the command use cases, which need this
    module, never depend on the bus (ADR 0010)."""

    batches: int
    events: int
    fallbacks: int

    async def submit(
        self, actor: Actor, agent_id: str, body: dict[str, Any], key: str | None
    ) -> dict[str, Any]: ...


class SoleNode:
    """The leader lock of a database one node uses (SQLite): this node always leads."""

    election: str | None = None

    async def hold(self) -> bool:
        return True

    async def close(self) -> None:
        return None


@dataclass
class OperationalCounters:
    """In-process counters the contract's AdminMetrics names (reset on restart)."""

    agent_command_polls: int = 0
    oversized_results_rejected: int = 0
    action_prepare_timeouts: int = 0


@dataclass
class MaintenanceState:
    """What this node's sweeper does, for runtime diagnostics (``workers/maintenance.py``)."""

    leader: bool = False  # this node runs the scheduled sweeps (always, on SQLite)
    sweeps: int = 0  # scheduled sweeps run by this node since it started
    last_sweep_at: datetime | None = None


@dataclass
class AppContext:
    """The composition root's one context: routes, the hot path, the CLI and the workers pass
    it; use cases never name it, each takes the protocol of what it reads (ADR 0010)."""

    settings: Settings
    uow_factory: UnitOfWorkFactory
    bus: DomainEventBus
    db_kind: str
    waiters: Waiters
    heartbeats: HeartbeatWriter
    agent_auth: AgentAuthCache
    login_throttle: LoginThrottle
    one_time_secrets: OneTimeSecrets
    # Online backup of the database (app/backup.py): SQLite's, or one that refuses
    # (PostgreSQL has pg_dump), so no use case asks which engine it runs on (ADR 0010).
    backup: DatabaseBackup
    counters: OperationalCounters = field(default_factory=OperationalCounters)
    bus_windows: IngestWindows = field(default_factory=IngestWindows)
    clock: Callable[[], datetime] = utcnow
    started_at: datetime = field(default_factory=utcnow)
    # Group commit for Capsule Bus publishes (app/bus_batch.py; its strategy per engine);
    # None (one-off CLI runtimes): one transaction each.
    bus_ingest: BusIngest | None = None
    # In-transaction subscribers to command outcomes (app/outcomes.py; ADR 0010).
    command_outcomes: CommandOutcomes = field(default_factory=CommandOutcomes)
    # The cross-node wake-ups' state: the listener's on PostgreSQL (store/pg_wake.py), None
    # on SQLite, which is one node.
    cross_node_wake: Callable[[], dict[str, Any] | None] = lambda: None
    # The topic bus (app/topics.py); None when OPSTAGE_TOPIC_BUS_ENABLED is off.
    topics: TopicBus | None = None
    # One leader among the nodes sharing a PostgreSQL database runs the scheduled maintenance
    # sweeps (ADR 0007); on SQLite, one node, it always leads.
    leader_lock: LeaderLock = field(default_factory=SoleNode)
    maintenance: MaintenanceState = field(default_factory=MaintenanceState)
    # The collector's passes and the event loop's lag (workers/collector.py, ADR 0019).
    pauses: PauseStats = field(default_factory=PauseStats)
    # The settings as started; ``settings`` may carry runtime overrides (app/maintenance_settings).
    base_settings: Settings | None = None

    def reader(self) -> UnitOfWork:
        return self.uow_factory(write=False)

    def writer(self) -> UnitOfWork:
        return self.uow_factory(write=True)
