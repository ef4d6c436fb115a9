"""What a fleet's calls cost one SQLite node: driver hand-offs per heartbeat batch, reads on a
fleet's reconnect after a start, timers of parked long-polls (ADR 0017).

Each hand-off to aiosqlite's thread is a thread wake-up and a GIL exchange with the event
loop; on a busy node each costs milliseconds of wall time, and thousands of agents made the
heartbeat p99 seconds long (bench/README.md, "Fleet"). The hand-offs are counted on the real
driver: its worker threads are wrapped before the runtime opens its connections.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import aiosqlite.core
import pytest
from opstage.api.inputs import agent_registration
from opstage.api.models import RegisterAgentRequest
from opstage.app import agents, commands
from opstage.app.agents import AgentPrincipal, register_agent
from opstage.app.context import Actor, AppContext
from opstage.app.services import HealthReport
from opstage.app.tokens import create_token
from opstage.domain.errors import Unauthorized
from opstage.domain.ids import hash_token
from opstage.runtime import Runtime
from opstage.settings import Settings
from opstage.store.agents import TOKENS_BY_HASHES_SQLITE, TOUCH_ONLINE_SQLITE
from opstage.store.migrate import upgrade_async
from opstage.store.services import HEALTH_TARGETS_SQLITE, REFRESH_HEALTH_SQLITE
from pydantic import SecretStr
from sqlalchemy.dialects import sqlite

OWNER = Actor("USER", "usr_test", role="owner")
# Driver hand-offs and files are SQLite's; test_fleet_either_engine.py covers PostgreSQL.
pytestmark = pytest.mark.sqlite_only


class HandOffs:
    """Counts the work items aiosqlite's connection threads run (one per hand-off)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = aiosqlite.core._connection_worker_thread
        counter = self

        class Counting:
            def __init__(self, queue: SimpleQueue[Any]) -> None:
                self.queue = queue

            def get(self) -> Any:
                item = self.queue.get()
                counter.count += 1
                return item

        def worker(tx: SimpleQueue[Any]) -> None:
            real(Counting(tx))  # type: ignore[arg-type]

        monkeypatch.setattr(aiosqlite.core, "_connection_worker_thread", worker)


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'fleet.db'}",
        data_dir=tmp_path,
        session_secret=SecretStr(secrets.token_urlsafe(40)),
        admin_username="owner",
        admin_password=SecretStr("owner-password-1234"),
        maintenance_interval_seconds=0,
    )


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> HandOffs:
    counter = HandOffs()
    counter.install(monkeypatch)
    return counter


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[[], Any]]:
    """Starts a runtime on one migrated SQLite file; a second call is a restart."""
    await upgrade_async(f"sqlite:///{tmp_path / 'fleet.db'}")
    running: list[Runtime] = []

    async def start_runtime() -> Runtime:
        if running:
            await running.pop().stop()
        running.append(await Runtime.start(_settings(tmp_path)))
        return running[-1]

    try:
        yield start_runtime
    finally:
        for rt in running:
            await rt.stop()


async def _fleet(ctx: AppContext, n: int) -> list[tuple[AgentPrincipal, str, str]]:
    """``n`` agents with one service each: (principal, raw token, service id)."""
    out = []
    for i in range(n):
        _, raw = await create_token(
            ctx, Actor.system(), name="t", expires_in_seconds=None, agent_code=None
        )
        code = f"{i}-{secrets.token_hex(3)}"
        body = {
            "registrationToken": raw,
            "agent": {"code": f"fleet-{code}", "name": "fleet"},
            "service": {
                "code": f"svc-{code}",
                "name": "svc",
                "manifest": {},
                "actions": [{"name": "restart", "label": "Restart"}],
            },
        }
        # The API's own parsing, as an agent's request is registered.
        reg = await register_agent(
            ctx, Actor.system(), agent_registration(RegisterAgentRequest.model_validate(body))
        )
        assert reg.service_id is not None
        principal = await agents.authenticate_agent(ctx, reg.agent_id, f"Bearer {reg.agent_token}")
        out.append((principal, reg.agent_token, reg.service_id))
    return out


UP = HealthReport("UP", None, None)


async def test_a_heartbeat_batch_of_online_agents_costs_few_hand_offs_whatever_its_size(
    start: Callable[[], Any], hand_offs: HandOffs, tmp_path: Path
) -> None:
    rt = await start()
    ctx = rt.ctx
    fleet = await _fleet(ctx, 40)
    before = hand_offs.count
    # First contact, all at once (a fleet reconnecting): PENDING -> ONLINE, health stored, and
    # an audit row each, written with the commit rather than one statement per agent.
    await asyncio.gather(*(agents.record_contact(ctx, p, UP, None) for p, _, _ in fleet))
    await asyncio.sleep(0.05)
    assert hand_offs.count - before <= 20  # 134 with an INSERT statement per audit row
    with closing(sqlite3.connect(tmp_path / "fleet.db")) as db:
        (audited,) = db.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'agent.heartbeat.received'"
        ).fetchone()
    assert audited == len(fleet)

    for size in (1, 40):
        before = hand_offs.count
        await asyncio.gather(*(agents.record_contact(ctx, p, UP, None) for p, _, _ in fleet[:size]))
        await asyncio.sleep(0.05)
        # Contact of agents already ONLINE with unchanged health: the touch (the BEGIN rides on
        # it), the health read, the refresh, the COMMIT; no rollback by the pool after it.
        # Core statements cost 13 here.
        assert hand_offs.count - before <= 4, size
    async with ctx.reader() as uow:
        agent = await uow.agents.get(fleet[0][0].agent_id)
        svc = await uow.services.get(fleet[0][2])
    assert agent is not None and agent["status"] == "ONLINE"
    assert svc is not None and svc["health_status"] == "UP"
    assert svc["last_health_at"] == agent["last_heartbeat_at"]


async def test_an_agents_calls_that_miss_the_auth_cache_together_read_once(
    start: Callable[[], Any], hand_offs: HandOffs
) -> None:
    rt = await start()
    fleet = await _fleet(rt.ctx, 2)
    rt = await start()  # a restart: the cache is cold, as for a fleet reconnecting
    ctx = rt.ctx
    (one, raw_one, _), (two, raw_two, _) = fleet

    before = hand_offs.count
    await agents.authenticate_agent(ctx, one.agent_id, f"Bearer {raw_one}")
    alone = hand_offs.count - before
    assert alone > 0

    before = hand_offs.count
    found = await asyncio.gather(
        *(agents.authenticate_agent(ctx, two.agent_id, f"Bearer {raw_two}") for _ in range(3))
    )
    assert hand_offs.count - before == alone  # the long-poll and the heartbeat share one read
    assert {p.agent_id for p in found} == {two.agent_id}

    # A wrong token still fails, and is not remembered.
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await agents.authenticate_agent(ctx, two.agent_id, "Bearer opstage_agent_nope")


async def test_first_polls_after_a_start_skip_the_probe_but_find_what_is_pending(
    start: Callable[[], Any],
) -> None:
    rt = await start()
    fleet = await _fleet(rt.ctx, 3)
    for p, _, _ in fleet:
        await agents.record_contact(rt.ctx, p, UP, None)
    waiting = await commands.request_action(rt.ctx, OWNER, fleet[0][2], "restart", {}, None)

    rt = await start()
    ctx = rt.ctx
    hint = ctx.waiters.pending
    assert await commands.poll_commands(ctx, fleet[1][0], 10, 0) == []
    assert await commands.poll_commands(ctx, fleet[2][0], 10, 0) == []
    assert hint.skipped == 2  # no read: nothing was pending for them at the start
    claimed = await commands.poll_commands(ctx, fleet[0][0], 10, 0)
    assert [c["id"] for c in claimed] == [waiting["id"]]

    # A command created after the start still reaches a clean agent's poll.
    later = await commands.request_action(ctx, OWNER, fleet[1][2], "restart", {}, None)
    claimed = await commands.poll_commands(ctx, fleet[1][0], 10, 0)
    assert [c["id"] for c in claimed] == [later["id"]]

    # A lag forgets the start's knowledge too: the next poll reads.
    hint.forget()
    skipped = hint.skipped
    assert await commands.poll_commands(ctx, fleet[2][0], 10, 0) == []
    assert hint.skipped == skipped


async def test_a_parked_long_poll_on_one_sqlite_node_waits_on_one_timer(
    start: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await start()
    ctx = rt.ctx
    ((p, _, service),) = await _fleet(ctx, 1)
    await agents.record_contact(ctx, p, UP, None)
    monkeypatch.setattr(commands, "LONG_POLL_RECHECK_SECONDS", 0.05)
    await commands.poll_commands(ctx, p, 10, 0)  # the agent is now known clean
    skipped = ctx.waiters.pending.skipped

    assert await commands.poll_commands(ctx, p, 10, 0.5) == []
    # Checked on arrival and at its deadline, nothing between: no wake-up from another node
    # can be lost here, so no rechecks (each answered by the pending hint: ten in 0.5 s).
    assert ctx.waiters.pending.skipped - skipped == 2

    poll = asyncio.ensure_future(commands.poll_commands(ctx, p, 10, 5))
    await asyncio.sleep(0.1)
    created = await commands.request_action(ctx, OWNER, service, "restart", {}, None)
    claimed = await asyncio.wait_for(poll, 2)  # woken by the commit, not by a timer
    assert [c["id"] for c in claimed] == [created["id"]]


async def test_cached_credentials_are_re_read_in_bulk_before_they_expire(
    start: Callable[[], Any],
    hand_offs: HandOffs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = await start()
    ctx = rt.ctx
    await asyncio.sleep(0.05)  # the runtime's own refresher is in its first 20 s sleep
    monkeypatch.setattr(agents, "AUTH_CACHE_TTL_SECONDS", 1.0)  # this test refreshes
    (kept, raw_kept, _), (revoked, raw_revoked, _) = await _fleet(ctx, 2)
    await asyncio.sleep(0.1)  # the registrations' own forgetting is done
    for p, raw in ((kept, raw_kept), (revoked, raw_revoked)):
        await agents.authenticate_agent(ctx, p.agent_id, f"Bearer {raw}")
    # Changed by another process on the same file: no event, no wake-up reaches this node.
    with closing(sqlite3.connect(tmp_path / "fleet.db")) as db:
        db.execute(
            "UPDATE agent_tokens SET status = 'REVOKED' WHERE agent_id = ?", (revoked.agent_id,)
        )
        db.commit()
    await asyncio.sleep(0.6)  # both entries now end within half their life

    assert await agents.refresh_agent_auth(ctx) == 2
    await asyncio.sleep(0.45)  # past the life they were first given
    before = hand_offs.count
    again = await agents.authenticate_agent(ctx, kept.agent_id, f"Bearer {raw_kept}")
    assert again.agent_id == kept.agent_id
    with pytest.raises(Unauthorized) as caught:
        await agents.authenticate_agent(ctx, revoked.agent_id, f"Bearer {raw_revoked}")
    assert caught.value.code == "AGENT_TOKEN_REVOKED"
    assert hand_offs.count == before  # both answered from the refreshed cache

    # A refresh that read before a change on this node (which forgets the agent) keeps
    # nothing of what it read, even once the entry was read again since.
    token_hash = hash_token(raw_revoked)
    generation = ctx.agent_auth.generation
    stale = ctx.agent_auth.get(token_hash)
    assert stale is not None
    ctx.agent_auth.forget(revoked.agent_id)
    with pytest.raises(Unauthorized):
        await agents.authenticate_agent(ctx, revoked.agent_id, f"Bearer {raw_revoked}")
    ctx.agent_auth.refreshed(
        [token_hash], {token_hash: {**stale, "token_status": "ACTIVE"}}, generation
    )
    with pytest.raises(Unauthorized):
        await agents.authenticate_agent(ctx, revoked.agent_id, f"Bearer {raw_revoked}")


async def test_a_unit_of_work_ends_its_transaction_once(
    start: Callable[[], Any], hand_offs: HandOffs
) -> None:
    rt = await start()
    ctx = rt.ctx
    ((p, _, _),) = await _fleet(ctx, 1)
    await asyncio.sleep(0.05)

    before = hand_offs.count
    async with ctx.reader() as uow:
        assert await uow.agents.get(p.agent_id) is not None
    # The read (its BEGIN riding on it) and its ROLLBACK: the pool does not roll back again.
    assert hand_offs.count - before == 2

    before = hand_offs.count
    async with ctx.writer() as uow:
        assert await uow.agents.touch_online([p.agent_id], ctx.clock()) == 0  # still PENDING
    assert hand_offs.count - before == 2  # the statement and the COMMIT

    # A unit that failed is rolled back for real, and the connection serves the next one.
    async def failing_use_case() -> None:
        async with ctx.writer() as uow:
            await uow.agents.touch_many([p.agent_id], ctx.clock())
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        await failing_use_case()
    async with ctx.reader() as uow:
        agent = await uow.agents.get(p.agent_id)
    assert agent is not None and agent["status"] == "PENDING"
    async with ctx.writer() as uow:
        await uow.agents.touch_many([p.agent_id], ctx.clock())
    async with ctx.reader() as uow:
        agent = await uow.agents.get(p.agent_id)
    assert agent is not None and agent["status"] == "ONLINE"


async def test_the_batch_statements_find_their_rows_by_key_not_by_scanning(
    start: Callable[[], Any], tmp_path: Path
) -> None:
    await start()
    dialect = sqlite.dialect()
    plans = {}
    with closing(sqlite3.connect(tmp_path / "fleet.db")) as db:
        for name, query, params in (
            ("touch", TOUCH_ONLINE_SQLITE, {"ids": "[]", "at": None}),
            ("health", HEALTH_TARGETS_SQLITE, {"ids": "[]"}),
            ("refresh", REFRESH_HEALTH_SQLITE, {"ids": "[]", "at": None}),
            ("tokens", TOKENS_BY_HASHES_SQLITE, {"hashes": "[]"}),
        ):
            sql, values = query.bind(dialect, **params)
            plans[name] = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", values)]
    # Every ONLINE agent through the status index, once per batch, was the Core statement's
    # plan too: thousands of rows read to touch a few.
    assert plans["touch"][0].startswith("SEARCH agents USING INDEX sqlite_autoindex_agents_1")
    assert plans["health"][0].startswith(
        "SEARCH capsule_services USING INDEX ix_capsule_services_agent_id"
    )
    assert plans["refresh"][0].startswith("SEARCH capsule_services USING INDEX sqlite_autoindex")
    assert plans["tokens"][0].startswith("SEARCH agent_tokens USING INDEX sqlite_autoindex")
