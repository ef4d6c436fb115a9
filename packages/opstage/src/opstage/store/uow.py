"""The unit of work: one transaction, its repositories, and the events it will publish.

Write units run on the writer engine (``BEGIN IMMEDIATE`` on SQLite); read units on the
reader pool. Domain events recorded during the unit are published only after the commit
succeeds. A locked or unreachable database surfaces as the domain's ``Unavailable`` (503,
retryable) rather than as an internal error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from opstage.domain.errors import DuplicateRow, Unavailable
from opstage.domain.events import DomainEvent
from opstage.domain.timeutil import utcnow
from opstage.store.agents import AgentRepo
from opstage.store.audit import AuditRepo
from opstage.store.bus import BusEventRepo, BusRouteRepo
from opstage.store.commands import CommandRepo
from opstage.store.engine import Engines
from opstage.store.event_log import APPEND_LOCK_KEY, EventLogRepo, append_statement
from opstage.store.fastpath.execution import Sql, commit_in_driver, execute_all
from opstage.store.fastpath.inserts import Insert, insert_statement
from opstage.store.fastpath.pg_tail import tail_work
from opstage.store.observability import ObservabilityRepo
from opstage.store.pg_wake import CHANNEL, payloads
from opstage.store.services import ServiceRepo
from opstage.store.settings import SettingRepo
from opstage.store.tables import metadata
from opstage.store.tokens import RegistrationTokenRepo
from opstage.store.topic_subscriptions import SubscriptionRepo
from opstage.store.topics import TopicRepo
from opstage.store.users import SessionRepo, UserRepo

if TYPE_CHECKING:
    from opstage.app import ports, repositories
    from opstage.app.eventbus import DomainEventBus


def _is_unavailable(exc: BaseException) -> bool:
    # PoolTimeout: every pooled connection stayed busy for the pool's timeout (a starved or
    # overloaded process): retry later, like a locked database, not an unhandled error.
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | ConnectionError)


# The keys of the waiters a unit's events should wake on other nodes (PostgreSQL).
WakeKeys = Callable[[Sequence[DomainEvent]], list[str]]


class SqlUnitOfWork:
    def __init__(
        self,
        engines: Engines,
        bus: DomainEventBus | None,
        *,
        write: bool,
        wake_keys: WakeKeys | None = None,
        wake_origin: str = "",
        relay: Callable[[Sequence[DomainEvent]], None] | None = None,
    ) -> None:
        self._engines = engines
        self._bus = bus
        # Only PostgreSQL has other nodes to wake (store/pg_wake.py); the origin token lets
        # this node's listener pass over its own.
        self._wake_keys = wake_keys if engines.kind == "postgres" else None
        self._wake_origin = wake_origin
        # Hands committed events to a cross-node relay (NATS; ADR 0016); never blocks.
        self._relay = relay
        self.write = write
        self.kind = engines.kind
        self.events: list[DomainEvent] = []
        self._inserts: list[Insert] = []  # insert_all: written at commit
        self._hooks: list[Callable[[], None]] = []
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "unit of work not entered"
        return self._conn

    async def __aenter__(self) -> SqlUnitOfWork:
        engine = self._engines.writer if self.write else self._engines.reader
        try:
            if self.write:
                self._engines.writers_waiting += 1
                try:
                    self._conn = await engine.connect()
                finally:
                    self._engines.writers_waiting -= 1
            else:
                self._conn = await engine.connect()
            self._tx = await self._conn.begin()
        except Exception as exc:
            if self._conn is not None:
                await self._conn.close()
            if _is_unavailable(exc):
                raise Unavailable(
                    "The database is busy or unreachable; retry shortly.",
                    code="DATABASE_UNAVAILABLE",
                    retry_after_seconds=1,
                ) from exc
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        assert self._tx is not None
        committed = False
        try:
            if exc is None and self.write:
                tail = self._tail_work()
                if tail is not None:  # one hand-off, COMMIT included on SQLite
                    await commit_in_driver(self._conn, tail)
                await self._tx.commit()
                committed = True
            else:
                await self._tx.rollback()
        except Exception as commit_exc:
            if isinstance(commit_exc, IntegrityError):
                raise DuplicateRow("The write conflicts with an existing row.") from commit_exc
            if _is_unavailable(commit_exc):
                raise Unavailable(
                    "The database is busy; retry shortly.",
                    code="DATABASE_UNAVAILABLE",
                    retry_after_seconds=1,
                ) from commit_exc
            raise
        finally:
            await self._conn.close()
        if isinstance(exc, IntegrityError):
            raise DuplicateRow("The write conflicts with an existing row.") from exc
        if exc is not None and _is_unavailable(exc):
            raise Unavailable(
                "The database is busy or unreachable; retry shortly.",
                code="DATABASE_UNAVAILABLE",
                retry_after_seconds=1,
            ) from exc
        if committed:
            for hook in self._hooks:
                hook()
            if self._bus is not None and self.events:
                self._bus.publish_all(self.events)
            if self._relay is not None and self.events:
                self._relay(self.events)

    async def ping(self) -> None:
        await self.conn.execute(text("SELECT 1"))

    def record(self, event: DomainEvent) -> None:
        self.events.append(event)

    async def insert_all(
        self, rows_by_table: Sequence[tuple[str, Sequence[Mapping[str, object]]]]
    ) -> None:
        """Insert each table's rows, in order, at commit: with the event log's rows and (on
        SQLite) the ``COMMIT`` itself, in one hand-off to the driver (ADR 0008).

        Nothing read in this unit after the call sees these rows; a conflict surfaces from the
        commit, as ``DuplicateRow``."""
        dialect = self.conn.dialect
        self._inserts.extend(
            insert_statement(dialect, metadata.tables[name], cast(Sequence[dict[str, Any]], rows))
            for name, rows in rows_by_table
            if rows
        )

    def _tail_work(self) -> Callable[[Sql], None] | None:
        """The unit's last driver work: buffered inserts, the event log, then (PostgreSQL)
        the other nodes' wake-ups, delivered by the database when this commits."""
        if not (self._inserts or self.events):
            return None
        dialect = self.conn.dialect
        log = append_statement(dialect, self.events, utcnow()) if self.events else None
        if dialect.name == "postgresql":  # one statement, the log under its lock (ADR 0005)
            keys = self._wake_keys(self.events) if self._wake_keys and self.events else []
            messages = payloads(keys, self._wake_origin)
            return tail_work(self._inserts, log, APPEND_LOCK_KEY, CHANNEL, messages)
        # SQLite: one writer, so the log needs no lock, and one node, so no wake-ups.
        return execute_all([*self._inserts, *([log] if log is not None else [])])

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    @cached_property
    def agents(self) -> AgentRepo:
        return AgentRepo(self.conn, self.kind)

    @cached_property
    def tokens(self) -> RegistrationTokenRepo:
        return RegistrationTokenRepo(self.conn, self.kind)

    @cached_property
    def services(self) -> ServiceRepo:
        return ServiceRepo(self.conn, self.kind)

    @cached_property
    def commands(self) -> CommandRepo:
        return CommandRepo(self.conn, self.kind)

    @cached_property
    def audit(self) -> AuditRepo:
        return AuditRepo(self.conn, self.kind)

    @cached_property
    def users(self) -> UserRepo:
        return UserRepo(self.conn, self.kind)

    @cached_property
    def sessions(self) -> SessionRepo:
        return SessionRepo(self.conn, self.kind)

    @cached_property
    def settings(self) -> SettingRepo:
        return SettingRepo(self.conn, self.kind)

    @cached_property
    def bus_routes(self) -> BusRouteRepo:
        return BusRouteRepo(self.conn, self.kind)

    @cached_property
    def bus_events(self) -> BusEventRepo:
        return BusEventRepo(self.conn, self.kind)

    @cached_property
    def event_log(self) -> EventLogRepo:
        return EventLogRepo(self.conn, self.kind)

    @cached_property
    def observability(self) -> ObservabilityRepo:
        return ObservabilityRepo(self.conn, self.kind)

    @cached_property
    def topics(self) -> TopicRepo:
        return TopicRepo(self.conn, self.kind)

    @cached_property
    def subscriptions(self) -> SubscriptionRepo:
        return SubscriptionRepo(self.conn, self.kind)


if TYPE_CHECKING:
    # mypy fails here when a store class drifts from the protocol the app sees (ADR 0011).
    _agents: type[repositories.AgentRepo] = AgentRepo
    _tokens: type[repositories.RegistrationTokenRepo] = RegistrationTokenRepo
    _services: type[repositories.ServiceRepo] = ServiceRepo
    _commands: type[repositories.CommandRepo] = CommandRepo
    _audit: type[repositories.AuditRepo] = AuditRepo
    _users: type[repositories.UserRepo] = UserRepo
    _sessions: type[repositories.SessionRepo] = SessionRepo
    _settings: type[repositories.SettingRepo] = SettingRepo
    _bus_routes: type[repositories.BusRouteRepo] = BusRouteRepo
    _bus_events: type[repositories.BusEventRepo] = BusEventRepo
    _event_log: type[repositories.EventLogRepo] = EventLogRepo
    _observability: type[repositories.ObservabilityRepo] = ObservabilityRepo
    _unit: type[ports.UnitOfWork] = SqlUnitOfWork
