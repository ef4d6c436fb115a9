"""Group commit for agent contact (heartbeats and polls).

Thousands of agents heartbeating must not cost thousands of write transactions. Each request
hands its update to this writer and waits; the writer folds everything that arrived while the
previous batch was committing into one transaction. A request is answered only after its batch
has committed, so no acknowledged heartbeat is ever lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.context import Actor, AppContext
from opstage.domain.events import AgentStatusChanged, ServiceHealthChanged
from opstage.domain.redaction import redact

log = logging.getLogger("opstage.heartbeats")
HEARTBEAT_AUDIT_EVERY_SECONDS = 300.0
MAX_BATCH = 2000


@dataclass
class Contact:
    agent_id: str
    at: datetime
    health: dict[str, Any] | None = None
    service_id: str | None = None


class HeartbeatWriter:
    def __init__(self) -> None:
        self._ctx: AppContext | None = None
        self._pending: dict[str, Contact] = {}
        self._futures: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._last_audit: dict[str, float] = {}
        self.batches = 0
        self.contacts = 0

    def bind(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def submit(self, contact: Contact) -> None:
        previous = self._pending.get(contact.agent_id)
        if previous is not None and contact.health is None:
            contact.health, contact.service_id = previous.health, previous.service_id
        self._pending[contact.agent_id] = contact
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        self._wake.set()
        await future

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending
                futures = self._futures
                self._pending, self._futures = {}, []
                if len(batch) > MAX_BATCH:
                    # Keep transactions short: put the overflow back for the next round.
                    items = list(batch.items())
                    batch = dict(items[:MAX_BATCH])
                    self._pending.update(dict(items[MAX_BATCH:]))
                try:
                    await self._flush(list(batch.values()))
                except Exception as exc:  # the waiting requests report it; keep serving
                    for f in futures:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for f in futures:
                    if not f.done():
                        f.set_result(None)

    async def _flush(self, contacts: list[Contact]) -> None:
        assert self._ctx is not None
        ctx = self._ctx
        self.batches += 1
        self.contacts += len(contacts)
        ids = [c.agent_id for c in contacts]
        async with ctx.writer() as uow:
            before = await uow.agents.statuses(ids)
            await uow.agents.touch_many([(c.agent_id, c.at) for c in contacts])
            now_mono = time.monotonic()
            for c in contacts:
                old = before.get(c.agent_id)
                if old is None:
                    continue
                status = old["status"]
                moved = status in ("PENDING", "OFFLINE")
                last = self._last_audit.get(c.agent_id, 0.0)
                if moved or now_mono - last >= HEARTBEAT_AUDIT_EVERY_SECONDS:
                    self._last_audit[c.agent_id] = now_mono
                    meta = {"fromStatus": status, "toStatus": "ONLINE"} if moved else {}
                    await write_audit(uow, Actor("AGENT", c.agent_id),
                                      "agent.heartbeat.received", target_type="Agent",
                                      target_id=c.agent_id, metadata=meta, now=c.at)
                if moved:
                    uow.record(AgentStatusChanged(c.agent_id, status, "ONLINE"))
                if c.health is not None:
                    await self._apply_health(uow, c)

    async def _apply_health(self, uow: Any, c: Contact) -> None:
        health = c.health or {}
        if c.service_id:
            svc = await uow.services.get(c.service_id)
            if svc is None or svc["agent_id"] != c.agent_id:
                return  # a foreign or unknown service: ignored, as the reference does
        else:
            # Existing agents send health without serviceId; it belongs to their only service.
            svc = await uow.services.sole_service_of(c.agent_id)
            if svc is None:
                return
        status = health.get("status", "UNKNOWN")
        await uow.services.update(svc["id"], {
            "health_status": status, "health_message": health.get("message"),
            "health_details": redact(health.get("details") or {}), "last_health_at": c.at,
            "updated_at": c.at})
        if svc["health_status"] != status:
            uow.record(ServiceHealthChanged(svc["id"], svc["health_status"], status))

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            while self._pending:
                await asyncio.sleep(0.01)
