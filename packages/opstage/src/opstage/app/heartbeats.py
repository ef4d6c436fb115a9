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

from opstage.app.audit import audit_row
from opstage.app.context import Actor, UnitContext
from opstage.app.ports import UnitOfWork
from opstage.app.services import HealthReport
from opstage.domain.errors import DomainError
from opstage.domain.events import AgentStatusChanged, ServiceHealthChanged
from opstage.domain.records import AgentContact, HealthUpdate, ServiceHealth
from opstage.domain.redaction import mask_token_values, redact

log = logging.getLogger("opstage.heartbeats")
HEARTBEAT_AUDIT_EVERY_SECONDS = 300.0
MAX_BATCH = 2000


@dataclass
class Contact:
    agent_id: str
    at: datetime
    health: HealthReport | None = None
    service_id: str | None = None


def _whole_database(exc: Exception) -> bool:
    """A failure of the database itself rather than of something one contact carried."""
    return isinstance(exc, DomainError) and exc.code == "DATABASE_UNAVAILABLE"


def _release(
    batch: list[Contact],
    waiters: dict[str, list[asyncio.Future[None]]],
    error: Exception | None,
) -> None:
    for contact in batch:
        for f in waiters.pop(contact.agent_id, []):
            if f.done():
                continue
            if error is None:
                f.set_result(None)
            else:
                f.set_exception(error)


class HeartbeatWriter:
    def __init__(self) -> None:
        self._ctx: UnitContext | None = None
        self._pending: dict[str, Contact] = {}
        # Waiters per agent, so a request is released only by the batch that carried its contact.
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_audit: dict[str, float] = {}
        self.batches = 0
        self.contacts = 0

    def bind(self, ctx: UnitContext) -> None:
        self._ctx = ctx

    async def submit(self, contact: Contact) -> None:
        previous = self._pending.get(contact.agent_id)
        if previous is not None and contact.health is None:
            contact.health, contact.service_id = previous.health, previous.service_id
        self._pending[contact.agent_id] = contact
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(contact.agent_id, []).append(future)
        self._idle.clear()
        self._wake.set()
        await future

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                ids = list(self._pending)[:MAX_BATCH]  # short transactions; the rest wait a round
                batch = [self._pending.pop(i) for i in ids]
                waiters = {i: self._waiters.pop(i, []) for i in ids}
                await self._commit(batch, waiters)
            self._idle.set()

    async def _commit(
        self, batch: list[Contact], waiters: dict[str, list[asyncio.Future[None]]]
    ) -> None:
        """Commit ``batch`` and release its requests; a failure fails only its own requests.

        A batch the database refuses is split in halves, each committed on its own, down to
        the contact that fails: one agent's bad write (a value its database cannot take) costs
        the others a few more transactions, never their heartbeats. A database that is busy
        or unreachable fails every request of the batch at once (503, retryable): splitting
        would only add load to it.
        """
        try:
            await self._flush(batch)
        except Exception as exc:  # the waiting requests report it; keep serving
            if len(batch) > 1 and not _whole_database(exc):
                log.warning(
                    "heartbeat batch of %d failed (%r); committing it in halves",
                    len(batch),
                    exc,
                )
                half = len(batch) // 2
                await self._commit(batch[:half], waiters)
                await self._commit(batch[half:], waiters)
                return
            _release(batch, waiters, exc)
            return
        _release(batch, waiters, None)

    async def _flush(self, contacts: list[Contact]) -> None:
        """One short write transaction for the whole batch.

        The batch is stamped with its latest arrival time (contacts in one batch arrived
        within the previous commit's duration), so agents already ONLINE — nearly all of
        them, nearly always — cost one UPDATE together, and an unchanged health one more.
        """
        assert self._ctx is not None
        ctx = self._ctx
        ids = [c.agent_id for c in contacts]
        at = max(c.at for c in contacts)
        audited: dict[str, float] = {}  # remembered once the batch has committed
        audit_rows: list[dict[str, Any]] = []
        async with ctx.writer() as uow:
            before: dict[str, AgentContact] | None = None
            if await uow.agents.touch_online(ids, at) < len(ids):
                before = await uow.agents.statuses(ids)
                rest = [i for i, row in before.items() if row["status"] != "ONLINE"]
                if rest:
                    await uow.agents.touch_many(rest, at)
            now_mono = time.monotonic()
            for c in contacts:
                status = "ONLINE"
                if before is not None:
                    old = before.get(c.agent_id)
                    if old is None:
                        continue  # deleted while its request was in flight
                    status = old["status"]
                moved = status in ("PENDING", "OFFLINE")
                last = self._last_audit.get(c.agent_id, 0.0)
                if moved or now_mono - last >= HEARTBEAT_AUDIT_EVERY_SECONDS:
                    audited[c.agent_id] = now_mono
                    meta = {"fromStatus": status, "toStatus": "ONLINE"} if moved else {}
                    row, recorded = audit_row(
                        Actor("AGENT", c.agent_id),
                        "agent.heartbeat.received",
                        target_type="Agent",
                        target_id=c.agent_id,
                        metadata=meta,
                        now=at,
                    )
                    audit_rows.append(row)
                    uow.record(recorded)
                if moved:
                    uow.record(AgentStatusChanged(c.agent_id, status, "ONLINE"))
            await self._apply_health(uow, [c for c in contacts if c.health is not None], at)
            # Written with the commit, in one statement: a fleet's first contacts after a
            # start are each audited, thousands in a few seconds (ADR 0017).
            await uow.insert_all([("audit_events", audit_rows)])
        self._last_audit.update(audited)
        self.batches += 1  # committed ones (a batch split after a failure counts its parts)
        self.contacts += len(contacts)

    async def _apply_health(self, uow: UnitOfWork, contacts: list[Contact], at: datetime) -> None:
        """One read and at most two writes for the whole batch, whatever its size."""
        if not contacts:
            return
        owned: dict[str, list[ServiceHealth]] = {}
        for row in await uow.services.health_targets([c.agent_id for c in contacts]):
            owned.setdefault(row["agent_id"], []).append(row)
        unchanged: list[str] = []
        updates: list[HealthUpdate] = []
        for c in contacts:
            mine = owned.get(c.agent_id, [])
            if c.service_id:
                # A foreign or unknown service is ignored, as the reference does.
                svc = next((r for r in mine if r["id"] == c.service_id), None)
            else:
                # Existing agents send health without serviceId: it is their only service's.
                svc = mine[0] if len(mine) == 1 else None
            if svc is None:
                continue
            health = c.health
            assert health is not None  # only contacts carrying health come here
            status = health.status
            message = health.message
            if message and "opstage_" in message:  # free text: tokens masked on the way in
                message = mask_token_values(message)
            details = redact(health.details or {})
            if (status, message, details) == (
                svc["health_status"],
                svc["health_message"],
                svc["health_details"] or {},
            ):
                unchanged.append(svc["id"])
                continue
            updates.append(
                {
                    "id": svc["id"],
                    "health_status": status,
                    "health_message": message,
                    "health_details": details,
                    "at": at,
                }
            )
            if svc["health_status"] != status:
                uow.record(ServiceHealthChanged(svc["id"], svc["health_status"], status))
        await uow.services.refresh_health(unchanged, at)
        await uow.services.set_health_many(updates)

    async def stop(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for acknowledged-to-be contacts to commit before shutdown."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
