"""What the application layer needs from persistence, as protocols.

``store.uow.SqlUnitOfWork`` implements ``UnitOfWork``; use cases see only this surface. The
repositories are typed loosely here (``Any``) so that ``app`` never imports ``store``; their
behaviour is pinned by the store's own tests and the end-to-end suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

from opstage.app.topic_ports import SubscriptionRepo, TopicRepo
from opstage.domain.events import DomainEvent


class UnitOfWork(Protocol):
    write: bool
    kind: str
    events: list[DomainEvent]  # recorded, published after commit

    @property
    def agents(self) -> Any: ...
    @property
    def tokens(self) -> Any: ...
    @property
    def services(self) -> Any: ...
    @property
    def commands(self) -> Any: ...
    @property
    def audit(self) -> Any: ...
    @property
    def users(self) -> Any: ...
    @property
    def sessions(self) -> Any: ...
    @property
    def settings(self) -> Any: ...

    @property
    def bus_routes(self) -> Any: ...

    @property
    def bus_events(self) -> Any: ...

    @property
    def event_log(self) -> Any: ...

    @property
    def observability(self) -> Any: ...

    @property
    def topics(self) -> TopicRepo: ...

    @property
    def subscriptions(self) -> SubscriptionRepo: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def record(self, event: DomainEvent) -> None: ...

    async def insert_all(self, rows_by_table: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Each table's rows in order, written with the commit (one round trip with the event
        log's rows); later reads in the unit do not see them."""

    async def ping(self) -> None: ...

    def after_commit(self, hook: Callable[[], None]) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool) -> UnitOfWork: ...


class BusSession(Protocol):
    """Capsule Bus batches pipelined on the writer (``store.bus_session``; SQLite only)."""

    async def __aenter__(self) -> BusSession: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def contended(self) -> bool:
        """Whether another writer of this process is waiting for the session's connection."""

    async def read(
        self,
        source_codes: Sequence[str],
        event_types: Sequence[str],
        event_ids: Sequence[str],
        key_pairs: Sequence[tuple[str, str]],
    ) -> Any:
        """``references`` (what routing reads), ``keys`` (stored idempotency keys) and the
        ``version`` of the database they were read at."""

    def commit_later(
        self,
        rows_by_table: Sequence[tuple[str, Sequence[Any]]],
        events: Sequence[DomainEvent],
        version: int,
    ) -> asyncio.Future[bool]:
        """Queue the batch's transaction: ``True`` once committed, ``False`` if the database
        changed since ``version`` (nothing written)."""

    def unfinished(self) -> asyncio.Future[bool] | None:
        """The oldest queued transaction still running, if any."""


class LeaderLock(Protocol):
    """One leader among the nodes sharing a database: ``store.pg_leader`` on PostgreSQL,
    ``app.context.SoleNode`` on SQLite (one node, always the leader).

    The leader holds a lease for as long as its connection lives; a node that dies loses it with
    its connection, and the next ``hold`` of another node takes it (ADR 0007).
    """

    election: str | None  # how the leader is chosen, for diagnostics; None: no election

    async def hold(self) -> bool:
        """Whether this node leads now: checks the lease it holds, or tries to take it."""

    async def close(self) -> None:
        """Gives the lease up (if held) and closes the connection."""
