"""The maintenance sweeper: records what time alone changes.

Agents silent past the threshold are stored OFFLINE (reads already derive it), commands past
``expiresAt`` become EXPIRED, registration tokens past expiry become EXPIRED. Each transition
is audited and published. The operations issue extends this with retention and settings.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.commands import expire_due_commands
from opstage.app.context import Actor, AppContext
from opstage.domain.events import AgentStatusChanged, RegistrationTokenChanged

log = logging.getLogger("opstage.maintenance")


async def sweep_once(ctx: AppContext) -> dict[str, Any]:
    now = ctx.clock()
    cutoff = now - timedelta(seconds=ctx.settings.agent_offline_threshold_seconds)
    offline = 0
    async with ctx.writer() as uow:
        for agent in await uow.agents.stale_live(cutoff):
            await uow.agents.update(agent["id"], {"status": "OFFLINE", "updated_at": now})
            await write_audit(uow, Actor.system(), "system.agent.offline", target_type="Agent",
                              target_id=agent["id"], metadata={"fromStatus": agent["status"]},
                              now=now)
            uow.record(AgentStatusChanged(agent["id"], agent["status"], "OFFLINE"))
            offline += 1
        expired_tokens = await uow.tokens.expire_due(now)
        for token_id in expired_tokens:
            await write_audit(uow, Actor.system(), "registration_token.expired",
                              target_type="RegistrationToken", target_id=token_id, now=now)
            uow.record(RegistrationTokenChanged(token_id, "EXPIRED"))
        await uow.sessions.delete_expired(now)
    expired_commands = await expire_due_commands(ctx)
    return {"offlineAgents": offline, "expiredCommands": expired_commands,
            "expiredRegistrationTokens": len(expired_tokens), "ranAt": now}


class MaintenanceSweeper:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        interval = self.ctx.settings.maintenance_interval_seconds
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                result = await sweep_once(self.ctx)
                if any(v for k, v in result.items() if k != "ranAt"):
                    log.info("maintenance sweep", extra={k: v for k, v in result.items()
                                                         if k != "ranAt"})
            except Exception:
                log.exception("maintenance sweep failed; will retry next interval")
