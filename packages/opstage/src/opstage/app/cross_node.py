"""What this node's commits tell the other nodes sharing its database, and what theirs mean
here (ADR 0005 for the long-polls' wake-ups, ADR 0016 for the live streams).

A unit that recorded domain events tells the others "the event log grew" (``LOG_WAKE_KEY``)
with its waiters' keys, on PostgreSQL's LISTEN/NOTIFY, unless a NATS relay carries the events
themselves; while the relay is disconnected the key goes by PostgreSQL again. Here a key or a
relayed batch wakes the live streams, which re-read the log: ids, order and completeness still
come from the log, and the streams' periodic re-read stays as the safety net.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opstage.app.agents import AgentAuthCache
from opstage.app.event_log import LOG_WAKE_KEY, STREAM_SUBSCRIPTION
from opstage.app.eventbus import DomainEventBus
from opstage.app.waiters import Waiters, wake_keys
from opstage.domain.events import AgentCredentialsChanged, DomainEvent

# Another node changed an agent's credentials or standing: forget its cached identity.
AUTH_KEY_PREFIX = "agent-auth:"


@dataclass
class CrossNode:
    bus: DomainEventBus
    waiters: Waiters
    agent_auth: AgentAuthCache
    # ``event_relay``: "auto" (PostgreSQL wake-ups), "nats" or "off" (the re-read alone).
    mode: str = "auto"
    # Is the NATS relay connected now? (None: no relay.)
    relay_connected: Callable[[], bool] | None = None
    log_wakeups: int = 0  # "the log grew" heard from another node, by either channel
    relayed_events: int = 0  # events another node relayed through NATS

    def keys(self, events: Sequence[DomainEvent]) -> list[str]:
        """The wake-up keys a unit that recorded ``events`` sends with its commit."""
        keys = wake_keys(events)
        # Always by the database, in the transaction: a revoked agent must not outlive it here.
        keys += [AUTH_KEY_PREFIX + e.agent_id for e in events if type(e) is AgentCredentialsChanged]
        if events and self._log_key_by_database():
            keys.append(LOG_WAKE_KEY)
        return keys

    def _log_key_by_database(self) -> bool:
        if self.mode == "off":
            return False
        # While the relay is connected it carries the events themselves.
        return self.relay_connected is None or not self.relay_connected()

    def on_keys(self, keys: Sequence[str]) -> None:
        """Keys another node's commit sent (store/pg_wake.py)."""
        rest = []
        for key in keys:
            if key.startswith(AUTH_KEY_PREFIX):
                self.agent_auth.forget(key.removeprefix(AUTH_KEY_PREFIX))
            elif key == LOG_WAKE_KEY:
                self.log_wakeups += 1
                self.bus.wake(STREAM_SUBSCRIPTION)
            else:
                rest.append(key)
        self.waiters.notify_keys(rest)

    def on_gap(self) -> None:
        """Wake-ups may have been missed (a listener reconnected): everyone re-reads."""
        self.agent_auth.clear()
        self.waiters.notify_all()
        self.bus.wake(STREAM_SUBSCRIPTION)

    def on_relayed(self, events: Sequence[DomainEvent]) -> None:
        """Another node's committed events, relayed through NATS (pubsub/event_relay.py): into
        this node's bus, as if committed here (waiters wake; live streams re-read the log)."""
        self.log_wakeups += 1
        self.relayed_events += len(events)
        for event in events:
            if isinstance(event, AgentCredentialsChanged):
                self.agent_auth.forget(event.agent_id)
        if events:
            self.bus.publish_all(events)
        self.bus.wake(STREAM_SUBSCRIPTION)

    def status(self) -> dict[str, Any]:
        return {
            "eventRelay": self.mode,
            "logWakeups": self.log_wakeups,
            "relayedEvents": self.relayed_events,
        }
