"""The maintenance sweeper: runs ``app.maintenance.run_maintenance`` every interval.

What a run does (offline agents and their services, expired commands and registration tokens,
expired sessions, audit retention — each transition audited and published) lives in the
application layer, so ``POST /api/admin/maintenance/run`` runs exactly the same thing.

The interval is read on every tick (``maintenanceIntervalSeconds`` can change at runtime through
``PATCH /api/admin/settings/maintenance``; 0 pauses the timer without stopping the service), and
the stored settings are reloaded every ``RELOAD_SECONDS`` so that a change made on another node
applies here too.

Nodes sharing one PostgreSQL database elect a leader (``ctx.leader_lock``, ADR 0007): only the
leader runs the scheduled sweeps, and every other node tries to take the lead on each tick, so
when the leader dies another node sweeps within one interval. ``POST
/api/admin/maintenance/run`` still runs on whichever node receives it. On SQLite (one node)
there is no lock and this node always sweeps.
"""

from __future__ import annotations

import asyncio
import logging
import time

from opstage.app import maintenance_settings
from opstage.app.context import AppContext
from opstage.app.maintenance import run_maintenance
from opstage.domain.timeutil import utcnow

log = logging.getLogger("opstage.maintenance")
RELOAD_SECONDS = 30.0


class MaintenanceSweeper:
    def __init__(self, ctx: AppContext, *, tick_seconds: float = 1.0) -> None:
        self.ctx = ctx
        self.tick = tick_seconds

    async def _reload(self) -> None:
        try:
            await maintenance_settings.load(self.ctx)
        except Exception:
            log.exception("could not load the stored maintenance settings; keeping current ones")

    async def _leads(self) -> bool:
        leader = await self.ctx.leader_lock.hold()
        self.ctx.maintenance.leader = leader
        return leader

    async def run(self) -> None:
        await self._reload()
        last_run = last_reload = time.monotonic()
        await self._leads()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            if now - last_reload >= RELOAD_SECONDS:
                await self._reload()
                last_reload = now
            if not await self._leads():
                continue
            interval = self.ctx.settings.maintenance_interval_seconds
            if interval <= 0 or now - last_run < interval:
                continue
            last_run = last_reload = now  # a run reloads the settings itself
            try:
                result = await run_maintenance(self.ctx)
            except Exception:
                log.exception("maintenance sweep failed; will retry next interval")
                continue
            self.ctx.maintenance.sweeps += 1
            self.ctx.maintenance.last_sweep_at = utcnow()
            counts = {k: v for k, v in result.items() if k != "ranAt" and v}
            if counts:
                log.info("maintenance sweep", extra=counts)
