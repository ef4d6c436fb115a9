"""What the application layer needs from persistence, as protocols.

``store.uow.SqlUnitOfWork`` implements ``UnitOfWork``; use cases see only this surface. The
repositories are typed loosely here (``Any``) so that ``app`` never imports ``store``; their
behaviour is pinned by the store's own tests and the end-to-end suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

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

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def record(self, event: DomainEvent) -> None: ...

    async def insert_all(self, rows_by_table: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Each table's rows in order, then the events recorded so far, in one round trip."""

    async def ping(self) -> None: ...

    def after_commit(self, hook: Callable[[], None]) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool) -> UnitOfWork: ...
