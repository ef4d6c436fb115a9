"""OpHub thin-forwarding: local adapters' events into Opstage's Capsule Bus.

The seed's shape is ``GET /capsule/bus/events -> OpHub -> POST /api/agents/:agentId/bus/events
-> Opstage``; the forwarder owns no routing, persistence or command creation — Opstage does.
It keeps one thing: a cursor per adapter, so nothing is forwarded twice.

The agent it forwards through is normally an OpHub agent (``agent_mode="ophub"``, env
``OPSTAGE_AGENT_MODE=ophub``): it registers as one and reports the adapters' services named in
``ophub_services`` (``OPSTAGE_OPHUB_SERVICES``), which the bus requires of an event's source.

The adapter side (the reference names only the path, so this is ours, documented in the
package README)::

    GET {base_url}/capsule/bus/events?after=<cursor>&limit=<n>
    -> {"events": [{"id": "...", "eventType": "...", "payload": {...}, "metadata": {...},
                    "correlationId": "...", "causationId": "...", "occurredAt": "...",
                    "sourceServiceCode": "..."}],
        "nextCursor": "..."}

A ``{"success": true, "data": {...}}`` envelope or a bare list of events is accepted too;
without ``nextCursor`` the cursor is the last event's ``id``. Without ``after`` the adapter
starts from its oldest retained event.

Delivery: each event is published with ``Idempotency-Key: ophub:<adapter>:<event id>`` and the
cursor is saved (atomically, mode 0600) after each event. A crash between the publish and the
save re-sends that one event, and the bus answers with the original (a replay) and creates
nothing. An event the bus refuses for good (a 4xx such as an unknown or foreign source
service) is logged, counted in ``stats.rejected`` and passed over; a rate limit, an outage of
the bus or of Opstage stops that adapter's round and the same event is tried again next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from opstage_agent.errors import (
    BusUnavailableError,
    NetworkError,
    OpstageAgentError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
)
from opstage_agent.token_store import write_private_atomically

if TYPE_CHECKING:
    from opstage_agent.aio import AsyncAgent

log = logging.getLogger("opstage_agent.ophub")
EVENTS_PATH = "/capsule/bus/events"


@dataclass(frozen=True)
class Adapter:
    """A local adapter whose events this OpHub forwards.

    ``service_code`` is the Capsule Service its events come from when an event does not say
    (default: the OpHub agent's own service). The agent must report that service
    (an OpHub agent: list it in ``ophub_services``).
    """

    name: str
    base_url: str
    service_code: str | None = None


@dataclass
class ForwarderStats:
    forwarded: int = 0
    replays: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # adapter, id, code
    adapter_errors: int = 0


class CursorFile:
    """``{adapter name: cursor}`` in one JSON file; a missing or corrupt file starts over."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self._cursors: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
                if isinstance(loaded, dict):
                    self._cursors = {str(k): str(v) for k, v in loaded.items()}
            except (OSError, ValueError):
                log.warning("OpHub cursor file %s is unreadable; starting over", self.path)

    def get(self, adapter: str) -> str | None:
        return self._cursors.get(adapter)

    def set(self, adapter: str, cursor: str) -> None:
        self._cursors[adapter] = cursor
        if self.path is not None:
            write_private_atomically(self.path, json.dumps(self._cursors).encode())


def _events_of(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(body, dict) and isinstance(body.get("data"), dict | list):
        body = body["data"]
    if isinstance(body, list):
        events, cursor = body, None
    elif isinstance(body, dict):
        events, cursor = body.get("events") or [], body.get("nextCursor")
    else:
        raise ValueError("expected an object with 'events' or a list of events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("'events' must be a list of objects")
    return events, str(cursor) if cursor is not None else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


class OpHubForwarder:
    def __init__(
        self,
        agent: AsyncAgent,
        adapters: Sequence[Adapter],
        *,
        cursor_file: Path | str | None = None,
        interval_seconds: float = 1.0,
        batch_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        names = [a.name for a in adapters]
        if len(set(names)) != len(names):
            raise ValueError("adapter names must be unique (they key the cursors)")
        self.agent = agent
        self.adapters = list(adapters)
        self.cursors = CursorFile(cursor_file)
        self.interval = interval_seconds
        self.batch_size = batch_size
        self.stats = ForwarderStats()
        self._transport = transport

    async def run(self) -> None:
        """Forward until cancelled, one round every ``interval_seconds`` when idle."""
        async with httpx.AsyncClient(timeout=10, transport=self._transport) as client:
            while True:
                moved = await self.forward_once(client)
                if not moved:
                    await asyncio.sleep(self.interval)

    async def forward_once(self, client: httpx.AsyncClient | None = None) -> int:
        """One round over every adapter; returns how many events it got past."""
        if client is None:
            async with httpx.AsyncClient(timeout=10, transport=self._transport) as own:
                return await self.forward_once(own)
        total = 0
        for adapter in self.adapters:
            try:
                total += await self._forward_adapter(client, adapter)
            except BusUnavailableError:
                raise  # nothing to forward into: the caller decides
            except (httpx.HTTPError, ValueError) as exc:
                self.stats.adapter_errors += 1
                log.warning("OpHub: adapter %s unreadable: %s", adapter.name, exc)
        return total

    async def _forward_adapter(self, client: httpx.AsyncClient, adapter: Adapter) -> int:
        params: dict[str, Any] = {"limit": self.batch_size}
        cursor = self.cursors.get(adapter.name)
        if cursor is not None:
            params["after"] = cursor
        response = await client.get(adapter.base_url.rstrip("/") + EVENTS_PATH, params=params)
        response.raise_for_status()
        events, next_cursor = _events_of(response.json())
        done = 0
        for event in events:
            event_id = str(event.get("id") or "")
            if not event_id:
                raise ValueError("an adapter event has no 'id'")
            if not await self._publish(adapter, event_id, event):
                return done  # try this event again next round
            done += 1
            last = event is events[-1]
            self.cursors.set(adapter.name, next_cursor if last and next_cursor else event_id)
        return done

    async def _publish(self, adapter: Adapter, event_id: str, event: dict[str, Any]) -> bool:
        try:
            published = await self.agent.publish_event(
                str(event.get("eventType") or ""),
                event.get("payload") if isinstance(event.get("payload"), dict) else {},
                correlation_id=event.get("correlationId"),
                causation_id=event.get("causationId"),
                metadata=event.get("metadata") if isinstance(event.get("metadata"), dict) else None,
                occurred_at=_time(event.get("occurredAt")),
                idempotency_key=f"ophub:{adapter.name}:{event_id}",
                source_service_code=event.get("sourceServiceCode") or adapter.service_code,
            )
        except (RateLimitedError, NetworkError, ServerError) as exc:
            log.info("OpHub: %s event %s deferred: %s", adapter.name, event_id, exc)
            if isinstance(exc, RateLimitedError) and exc.retry_after:
                await asyncio.sleep(min(exc.retry_after, 60.0))
            return False
        except BusUnavailableError:
            raise
        except RequestRejectedError as exc:
            code = exc.code or "REJECTED"
            self.stats.rejected.append((adapter.name, event_id, code))
            log.warning("OpHub: %s event %s refused by the bus: %s", adapter.name, event_id, exc)
            return True
        except OpstageAgentError as exc:  # authentication and the like: not this event's fault
            log.warning("OpHub: %s event %s not forwarded: %s", adapter.name, event_id, exc)
            return False
        if published.replay:
            self.stats.replays += 1
        else:
            self.stats.forwarded += 1
        return True
