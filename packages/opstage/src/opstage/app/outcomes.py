"""Command outcomes, for whoever reacts to them inside the same transaction.

A command reaching SUCCEEDED or FAILED is published here by ``app/commands.py``; the Capsule
Bus subscribes (``bus.outcome_subscriber``) to store the outcome as a bus event that routes
may react to. Not the in-process ``DomainEventBus``: that one runs after the commit and may
drop; an outcome event belongs to the result's own transaction (ADR 0010). The commands and
the bus know only this module, never each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opstage.app.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """A command's terminal status, written in ``uow`` and not yet committed."""

    command: dict[str, Any]  # the row as it was before the result
    status: str
    error_code: str | None
    at: datetime


OutcomeSubscriber = Callable[[UnitOfWork, CommandOutcome], Awaitable[None]]


class CommandOutcomes:
    def __init__(self) -> None:
        self._subscribers: list[OutcomeSubscriber] = []

    def subscribe(self, subscriber: OutcomeSubscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, uow: UnitOfWork, outcome: CommandOutcome) -> None:
        """Each subscriber in turn, in the caller's unit of work (a failure fails the unit)."""
        for subscriber in self._subscribers:
            await subscriber(uow, outcome)
