"""Domain events relayed across nodes through NATS (``OPSTAGE_EVENT_RELAY=nats``; ADR 0016).

After a unit of work commits, its events go, as one message, to the core-NATS subject
``SUBJECT``: ``{"o": origin, "s": seq, "e": [[kind, fields], …]}``. Every node subscribes and
hands the other nodes' batches to ``on_events``; it passes over its own (``o``) and over a batch
it has already seen (``o`` and ``s``), and it never publishes what it received, so there is no
echo loop. Publishing never blocks a commit: batches wait in a bounded queue for the relay's
task, and a full queue drops the oldest (the receivers' periodic re-read of the event log is the
safety net). Core NATS is at most once; nothing here is the record, the event log is.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from opstage.domain.events import DomainEvent, from_wire

log = logging.getLogger("opstage.pubsub")
SUBJECT = "opstage.domain-events"
QUEUE_LIMIT = 10_000  # batches waiting for the connection
SEEN_LIMIT = 4096  # (origin, seq) remembered to drop a duplicate
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


def encode(origin: str, seq: int, events: Sequence[DomainEvent]) -> bytes:
    return orjson.dumps({"o": origin, "s": seq, "e": [[e.kind, e] for e in events]})


class NatsEventRelay:
    def __init__(
        self,
        url: str,
        origin: str,
        on_events: Callable[[list[DomainEvent]], None],
        subject: str = SUBJECT,
    ) -> None:
        self._url = url
        self._origin = origin
        self._on_events = on_events
        self._subject = subject
        self._nc: Any = None
        self._queue: deque[bytes] = deque(maxlen=QUEUE_LIMIT)
        self._ready = asyncio.Event()
        self._seq = 0
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.published = 0
        self.received = 0
        self.duplicates = 0
        self.publish_failures = 0

    @property
    def connected(self) -> bool:
        return self._nc is not None and bool(self._nc.is_connected)

    def status(self) -> dict[str, Any]:
        return {
            "nats": {
                "subject": self._subject,
                "connected": self.connected,
                "published": self.published,
                "received": self.received,
                "duplicates": self.duplicates,
                "publishFailures": self.publish_failures,
            }
        }

    def offer(self, events: Sequence[DomainEvent]) -> None:
        """A committed unit's events, for the other nodes (never blocks, never fails)."""
        if not events:
            return
        self._seq += 1
        self._queue.append(encode(self._origin, self._seq, events))
        self._ready.set()

    def _deliver(self, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
            origin, seq, batch = message["o"], int(message["s"]), message["e"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("event relay: passed over a malformed message")
            return
        if origin == self._origin:
            return
        if (origin, seq) in self._seen:
            self.duplicates += 1
            return
        self._seen[(origin, seq)] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        self.received += 1
        events = []
        for item in batch:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                event = from_wire(str(item[0]), item[1])
                if event is not None:
                    events.append(event)
        self._on_events(events)

    async def _on_message(self, msg: Any) -> None:
        self._deliver(msg.data)

    async def _connect(self) -> Any:
        import nats

        failures = 0
        while True:
            try:
                # Reconnects on its own after a loss, for ever; while it is away this node's
                # events go by PostgreSQL's wake-ups (app/cross_node.py).
                return await nats.connect(
                    self._url,
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    name="opstage-event-relay",
                )
            except Exception as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("event relay cannot reach NATS (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def run(self) -> None:
        self._nc = await self._connect()
        try:
            await self._nc.subscribe(self._subject, cb=self._on_message)
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._queue:
                    payload = self._queue.popleft()
                    try:
                        await self._nc.publish(self._subject, payload)
                        self.published += 1
                    except Exception as exc:  # disconnected past the client's buffer
                        self.publish_failures += 1
                        log.warning("event relay could not publish (%s)", exc)
        finally:
            nc, self._nc = self._nc, None
            if not nc.is_closed:
                await nc.close()
