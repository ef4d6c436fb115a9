"""The fleet's cheaper paths (ADR 0017) keep their behaviour on both engines: the auth cache's
bulk refresh, the pending hint's warm-up at start, the heartbeat batch's statements."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from opstage.app import agents, commands
from opstage.app.services import HealthReport
from opstage.domain.errors import DomainError
from opstage.domain.ids import hash_token
from opstage.runtime import Runtime
from opstage.settings import Settings
from opstage.store.migrate import upgrade_async
from pydantic import SecretStr

from .test_fleet_hot_path import OWNER, _fleet


async def _runtime(url: str, tmp_path: Path) -> Runtime:
    return await Runtime.start(
        Settings(
            database_url=url,
            data_dir=tmp_path,
            session_secret=SecretStr(secrets.token_urlsafe(40)),
            admin_username="owner",
            admin_password=SecretStr("owner-password-1234"),
            maintenance_interval_seconds=0,
        )
    )


async def test_refresh_warm_up_and_batches_on_either_engine(
    tmp_path: Path,
    database_factory: Callable[[Path], str | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'either.db'}"
    await upgrade_async(url)
    rt = await _runtime(url, tmp_path)
    try:
        fleet = await _fleet(rt.ctx, 3)
        up = HealthReport("UP", None, None)
        for _ in range(2):  # first contact (transitions), then the steady batch
            await asyncio.gather(*(agents.record_contact(rt.ctx, p, up, None) for p, _, _ in fleet))
        async with rt.ctx.reader() as uow:
            seen = [await uow.agents.get(p.agent_id) for p, _, _ in fleet]
        assert {a["status"] for a in seen if a is not None} == {"ONLINE"}
        waiting = await commands.request_action(rt.ctx, OWNER, fleet[0][2], "restart", {}, None)
    finally:
        await rt.stop()

    rt = await _runtime(url, tmp_path)
    try:
        ctx = rt.ctx
        await asyncio.sleep(0.05)  # the runtime's refresher is in its first sleep
        monkeypatch.setattr(agents, "AUTH_CACHE_TTL_SECONDS", 1.0)
        claimed = await commands.poll_commands(ctx, fleet[0][0], 10, 0)
        assert [c["id"] for c in claimed] == [waiting["id"]]
        assert await commands.poll_commands(ctx, fleet[1][0], 10, 0) == []

        for p, raw, _ in fleet:
            await agents.authenticate_agent(ctx, p.agent_id, f"Bearer {raw}")
        await agents.set_agent_standing(ctx, OWNER, fleet[2][0].agent_id, "revoke")
        await asyncio.sleep(0.6)
        assert await agents.refresh_agent_auth(ctx) == 2  # the revoked one was forgotten
        for _principal, raw, _ in fleet[:2]:
            assert ctx.agent_auth.get(hash_token(raw)) is not None
        with pytest.raises(DomainError) as caught:
            await agents.authenticate_agent(ctx, fleet[2][0].agent_id, f"Bearer {fleet[2][1]}")
        assert caught.value.code == "AGENT_REVOKED"
    finally:
        await rt.stop()
