"""Agent identity: registration, bearer authentication, contact, and operator controls.

Registration rules (docs/security.md): a registration token is single use and may be scoped
to one agent code. An unscoped token registers new codes and re-registers a code whose agent
is in good standing (a lost token file); that rotates the agent token. A revoked agent comes
back only through a token scoped to its code; a disabled agent may re-register but stays
disabled. A service code already owned by another live agent cannot be claimed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.app.heartbeats import Contact, HeartbeatWriter
from opstage.app.repositories import SortSpec
from opstage.app.services import (
    HealthReport,
    ServiceReport,
    claim_service_codes,
    upsert_service,
)
from opstage.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from opstage.domain.events import AgentCredentialsChanged, AgentRegistered, AgentStatusChanged
from opstage.domain.identity import agent_code_problem
from opstage.domain.ids import AGENT_TOKEN_PREFIX, hash_token, new_id, new_token
from opstage.domain.records import (
    AgentChanges,
    AgentCredential,
    AgentRow,
    RegistrationTokenRow,
    ServiceWithAgent,
)
from opstage.domain.redaction import mask_strings
from opstage.domain.status import AgentStatus

# A fleet agent calls every 25-30 s (long-poll, heartbeat): a shorter life would make every
# call a miss. Changes on this node forget the agent at commit; another node's reach this one
# as a wake-up key or a relayed event (app/cross_node.py, ADR 0016), and a listener gap
# forgets everything; the TTL only bounds what no channel carries. Entries are re-read
# in bulk before their life ends (``refresh_agent_auth``, ADR 0017), not one miss at a time.
AUTH_CACHE_TTL_SECONDS = 60.0
log = logging.getLogger("opstage.agents")
# ``embedded`` is the contract's; ``ophub`` is our documented extension (docs/compatibility.md).
AGENT_MODES = ("embedded", "ophub")
_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AgentRegistration:
    """An agent's registration request, as the edge parsed it (ADR 0011)."""

    registration_token: str
    code: str
    name: str | None = None
    mode: str = "embedded"
    runtime: str | None = None
    service: ServiceReport | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registration hands back: the raw agent token is shown this once."""

    agent_id: str
    agent_token: str
    service_id: str | None


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    agent_id: str
    token_id: str
    code: str


class AgentAuthCache:
    """Token-hash → identity for ``AUTH_CACHE_TTL_SECONDS``, so the hot path skips a query.

    Changes made on this node (rotation, disable, revoke) forget the agent at commit; changes
    made on another node of a cluster forget it when this node hears them (ADR 0016).
    """

    def __init__(self) -> None:
        self._by_hash: dict[str, tuple[AgentCredential, float]] = {}
        # A read in flight per token hash: an agent's long-poll and heartbeat start together,
        # so after a start both would miss and read (ADR 0017).
        self._reading: dict[str, asyncio.Task[AgentCredential | None]] = {}
        # Moves on every forget: a row read before one may be stale, and is not kept.
        self.generation = 0

    def get(self, token_hash: str) -> AgentCredential | None:
        hit = self._by_hash.get(token_hash)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, token_hash: str, row: AgentCredential) -> None:
        if len(self._by_hash) > 50_000:
            self._by_hash.clear()
        self._by_hash[token_hash] = (row, time.monotonic() + AUTH_CACHE_TTL_SECONDS)

    async def load(
        self, token_hash: str, read: Callable[[], Awaitable[AgentCredential | None]]
    ) -> AgentCredential | None:
        """The credential ``read`` finds for ``token_hash``, kept when found; requests that
        miss the same hash while it runs share its answer (or its error). The read runs as a
        task of its own, so one waiting request that is cancelled cancels no other's."""
        task = self._reading.get(token_hash)
        if task is None:

            async def read_and_keep() -> AgentCredential | None:
                generation = self.generation
                row = await read()
                if row is not None and generation == self.generation:
                    self.put(token_hash, row)
                return row

            task = asyncio.ensure_future(read_and_keep())
            self._reading[token_hash] = task
            task.add_done_callback(lambda _: self._reading.pop(token_hash, None))
        return await asyncio.shield(task)

    def expiring(self, within: float) -> list[str]:
        """The hashes whose entries end within ``within`` seconds."""
        limit = time.monotonic() + within
        return [h for h, (_, until) in self._by_hash.items() if until < limit]

    def refreshed(
        self, asked: Sequence[str], found: dict[str, AgentCredential], generation: int
    ) -> None:
        """Entries re-read in bulk (``refresh_agent_auth``) live on; a hash no longer found is
        dropped. Nothing is kept if anything was forgotten since ``generation``."""
        if generation != self.generation:
            return
        for token_hash in asked:
            row = found.get(token_hash)
            if row is None:
                self._by_hash.pop(token_hash, None)
            elif token_hash in self._by_hash:
                self.put(token_hash, row)

    def clear(self) -> None:
        self.generation += 1
        self._by_hash.clear()

    def forget(self, agent_id: str) -> None:
        self.generation += 1
        for key in [k for k, (row, _) in self._by_hash.items() if row["agent_id"] == agent_id]:
            self._by_hash.pop(key, None)


class AgentContext(UnitContext, Protocol):
    """What agent identity uses of the application context (``AppContext`` is one): the
    token cache the hot path reads and changes forget (ADR 0010)."""

    agent_auth: AgentAuthCache


class ContactContext(UnitContext, Protocol):
    """What recording an agent's contact uses: the heartbeat group commit (ADR 0010)."""

    heartbeats: HeartbeatWriter


AUTH_REFRESH_BATCH = 500


async def refresh_agent_auth(ctx: AgentContext) -> int:
    """Re-read, in bulk, the cached credentials that would expire within half their life.

    Without it every agent misses the cache once a life (N/60 reads a second, a few driver
    hand-offs each: 333/s at 20,000 agents); with it a third of a life apart, the cache's
    entries are re-read 500 to a statement and a change no channel carried (another process
    on the same SQLite file) is still seen within a life (ADR 0017). Returns how many it asked.
    """
    cache = ctx.agent_auth
    asked = cache.expiring(AUTH_CACHE_TTL_SECONDS / 2)
    generation = cache.generation
    found: dict[str, AgentCredential] = {}
    for start in range(0, len(asked), AUTH_REFRESH_BATCH):
        async with ctx.reader() as uow:
            found.update(
                await uow.agents.tokens_by_hashes(asked[start : start + AUTH_REFRESH_BATCH])
            )
    cache.refreshed(asked, found, generation)
    return len(asked)


async def keep_agent_auth_fresh(ctx: AgentContext) -> None:
    """``refresh_agent_auth`` every third of the cache's life, for as long as the node runs."""
    while True:
        await asyncio.sleep(AUTH_CACHE_TTL_SECONDS / 3)
        try:
            await refresh_agent_auth(ctx)
        except Exception:  # entries then expire and are read one by one; keep refreshing
            log.warning("agent auth cache refresh failed", exc_info=True)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    match = _BEARER.match(authorization)
    return match.group(1) if match else None


async def authenticate_agent(
    ctx: AgentContext, path_agent_id: str, authorization: str | None
) -> AgentPrincipal:
    raw = _bearer(authorization)
    if raw is None:
        raise Unauthorized(
            "Agent token required: send 'Authorization: Bearer <agent token>'.",
            code="AGENT_TOKEN_INVALID",
        )
    token_hash = hash_token(raw)
    row = ctx.agent_auth.get(token_hash)
    if row is None:

        async def read() -> AgentCredential | None:
            async with ctx.reader() as uow:
                return await uow.agents.token_by_hash(token_hash)

        row = await ctx.agent_auth.load(token_hash, read)
        if row is None:
            raise Unauthorized("Invalid agent token.", code="AGENT_TOKEN_INVALID")
    if row["agent_status"] == AgentStatus.REVOKED:
        raise Forbidden(
            "Agent is revoked; it must be re-registered by an operator.", code="AGENT_REVOKED"
        )
    if row["token_status"] != "ACTIVE":
        raise Unauthorized(
            "Agent token has been revoked (the agent re-registered or was "
            "rotated); register again.",
            code="AGENT_TOKEN_REVOKED",
        )
    if row["agent_id"] != path_agent_id:
        raise Forbidden(
            "The agent token does not belong to this agent id.", code="AGENT_ID_MISMATCH"
        )
    if row["agent_status"] == AgentStatus.DISABLED:
        raise Forbidden("Agent is disabled.", code="AGENT_DISABLED")
    return AgentPrincipal(row["agent_id"], row["token_id"], row["agent_code"])


async def register_agent(ctx: AgentContext, actor: Actor, body: AgentRegistration) -> Registration:
    raw_reg = body.registration_token
    service_in = body.service
    code = body.code
    _check_identity(code, body.mode)  # before the token is looked at
    now = ctx.clock()
    reg_hash = hash_token(raw_reg)
    async with ctx.writer() as uow:
        reg = await uow.tokens.get_by_hash(reg_hash)
        _check_registration_token(reg, now)
        assert reg is not None
        if reg["agent_code"] and reg["agent_code"] != code:
            raise Forbidden(
                f"This registration token is scoped to agent code '{reg['agent_code']}'.",
                code="REGISTRATION_TOKEN_SCOPE_MISMATCH",
            )
        existing = await uow.agents.get_by_code(code)
        if (
            existing is not None
            and existing["status"] == AgentStatus.REVOKED
            and reg["agent_code"] != code
        ):
            raise Forbidden(
                "Agent is revoked; re-registering it needs a registration token "
                "scoped to its code.",
                code="AGENT_REVOKED",
            )
        agent_id = existing["id"] if existing else new_id("agt")
        if service_in is not None:
            await claim_service_codes(uow, agent_id, [service_in.code])
        used = await uow.tokens.update(
            reg["id"],
            {
                "status": "USED",
                "used_at": now,
                "used_by_agent_id": agent_id,
                "updated_at": now,
            },
            only_status="ACTIVE",
        )
        if not used:
            raise Conflict(
                "Registration token has already been used.", code="REGISTRATION_TOKEN_USED"
            )
        agent_actor = Actor("AGENT", agent_id, actor.ip, actor.user_agent, actor.request_id)
        revoked = 0
        values: AgentChanges = {
            "name": mask_strings(body.name),
            "mode": body.mode,
            "runtime": mask_strings(body.runtime),
            # The topic-bus tenants its (latest) registration token grants (app/topics.py).
            "topic_tenants": reg["topic_tenants"],
            "updated_at": now,
        }
        if existing is None:
            await uow.agents.insert(
                {
                    "id": agent_id,
                    "code": code,
                    "name": mask_strings(body.name),
                    "mode": body.mode,
                    "runtime": mask_strings(body.runtime),
                    "status": AgentStatus.PENDING,
                    "last_heartbeat_at": None,
                    "topic_tenants": reg["topic_tenants"],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        else:
            revoked = await uow.agents.revoke_active_tokens(agent_id, now)
            status = existing["status"]
            if status == AgentStatus.REVOKED:
                values["status"] = AgentStatus.PENDING
                uow.record(AgentStatusChanged(agent_id, status, AgentStatus.PENDING))
            await uow.agents.update(agent_id, values)
        raw_agent = new_token(AGENT_TOKEN_PREFIX)
        token_id = new_id("atk")
        await uow.agents.insert_token(
            {
                "id": token_id,
                "agent_id": agent_id,
                "token_hash": hash_token(raw_agent),
                "status": "ACTIVE",
                "registration_token_id": reg["id"],
                "created_at": now,
                "revoked_at": None,
            }
        )
        await write_audit(
            uow,
            agent_actor,
            "registration_token.consumed",
            target_type="RegistrationToken",
            target_id=reg["id"],
            metadata={"agentCode": code},
            now=now,
        )
        if existing is not None:
            await write_audit(
                uow,
                agent_actor,
                "agent.token.rotated",
                target_type="Agent",
                target_id=agent_id,
                metadata={
                    "revokedTokens": revoked,
                    "registrationTokenId": reg["id"],
                    "previousStatus": existing["status"],
                },
                now=now,
            )
        await write_audit(
            uow,
            agent_actor,
            "agent.registered",
            target_type="Agent",
            target_id=agent_id,
            metadata={"code": code, "reregistered": existing is not None},
            now=now,
        )
        await write_audit(
            uow,
            Actor.system(),
            "agent_token.issued",
            target_type="AgentToken",
            target_id=token_id,
            metadata={"agentId": agent_id},
            now=now,
        )
        service_id = None
        if service_in is not None:
            service_id = await upsert_service(
                uow, agent_actor, agent_id, service_in, now, audit=True
            )
        uow.record(AgentRegistered(agent_id, code, rotated=existing is not None))
        uow.record(AgentCredentialsChanged(agent_id))
        uow.after_commit(lambda: ctx.agent_auth.forget(agent_id))
    return Registration(agent_id, raw_agent, service_id)


def _check_identity(code: str, mode: str) -> None:
    """The API's model checks these too; in-process callers (the CLI, tests) come here only."""
    issues = []
    problem = agent_code_problem(code)
    if problem:
        issues.append({"path": "agent.code", "message": problem})
    if mode not in AGENT_MODES:
        issues.append({"path": "agent.mode", "message": f"must be one of {', '.join(AGENT_MODES)}"})
    if issues:
        raise ValidationFailed("Request body validation failed.", issues)


def _check_registration_token(reg: RegistrationTokenRow | None, now: datetime) -> None:
    if reg is None:
        raise Unauthorized("Invalid registration token.", code="REGISTRATION_TOKEN_INVALID")
    status = reg["status"]
    if status == "REVOKED":
        raise Unauthorized(
            "Registration token has been revoked.", code="REGISTRATION_TOKEN_REVOKED"
        )
    if status == "USED":
        raise Conflict("Registration token has already been used.", code="REGISTRATION_TOKEN_USED")
    if status == "EXPIRED" or (reg["expires_at"] is not None and reg["expires_at"] <= now):
        raise Unauthorized("Registration token has expired.", code="REGISTRATION_TOKEN_EXPIRED")


async def record_contact(
    ctx: ContactContext, agent: AgentPrincipal, health: HealthReport | None, service_id: str | None
) -> None:
    await ctx.heartbeats.submit(Contact(agent.agent_id, ctx.clock(), health, service_id))


# --- operator controls -------------------------------------------------------------------


async def get_agent(ctx: UnitContext, agent_id: str) -> tuple[AgentRow, list[ServiceWithAgent]]:
    async with ctx.reader() as uow:
        agent = await uow.agents.get(agent_id)
        if agent is None:
            raise NotFound("Agent not found.", code="AGENT_NOT_FOUND")
        services = await uow.services.by_agent(agent_id)
    return agent, services


async def list_agents(
    ctx: UnitContext,
    *,
    statuses: Sequence[str],
    q: str | None,
    sort: SortSpec,
    page: int,
    page_size: int,
) -> tuple[list[AgentRow], int, dict[str, int]]:
    async with ctx.reader() as uow:
        rows, total = await uow.agents.list(
            statuses=statuses,
            q=q,
            sort=sort,
            page=page,
            page_size=page_size,
        )
        counts = await uow.agents.service_counts([r["id"] for r in rows])
    return rows, total, counts


async def set_agent_standing(
    ctx: AgentContext, actor: Actor, agent_id: str, change: str
) -> AgentRow:
    """``change`` is disable, enable or revoke."""
    now = ctx.clock()
    async with ctx.writer() as uow:
        agent = await uow.agents.get(agent_id)
        if agent is None:
            raise NotFound("Agent not found.", code="AGENT_NOT_FOUND")
        old = agent["status"]
        if change in ("disable", "enable") and old == AgentStatus.REVOKED:
            raise Conflict("Agent is revoked.", code="AGENT_REVOKED")
        values: AgentChanges = {"updated_at": now}
        meta: dict[str, Any] = {"fromStatus": old}
        if change == "disable":
            values["status"] = AgentStatus.DISABLED
        elif change == "enable":
            # As the reference: enabled is ONLINE; the sweep stores OFFLINE if it stays silent.
            values["status"] = AgentStatus.ONLINE
        elif change == "revoke":
            values["status"] = AgentStatus.REVOKED
            meta["revokedTokens"] = await uow.agents.revoke_active_tokens(agent_id, now)
        else:  # pragma: no cover - routes pass fixed values
            raise DomainError(f"unknown change {change}")
        await uow.agents.update(agent_id, values)
        await write_audit(
            uow,
            actor,
            {"disable": "agent.disabled", "enable": "agent.enabled", "revoke": "agent.revoked"}[
                change
            ],
            target_type="Agent",
            target_id=agent_id,
            metadata=meta,
            now=now,
        )
        new_status = values.get("status", old)
        if new_status != old:
            uow.record(AgentStatusChanged(agent_id, old, new_status))
        uow.record(AgentCredentialsChanged(agent_id))
        uow.after_commit(lambda: ctx.agent_auth.forget(agent_id))
        agent = await uow.agents.get(agent_id)
    assert agent is not None
    return agent
