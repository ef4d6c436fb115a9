"""Registration tokens: created by operators, consumed once by an agent's registration."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.domain.errors import Conflict, NotFound, ValidationFailed
from opstage.domain.events import RegistrationTokenChanged
from opstage.domain.identity import agent_code_problem
from opstage.domain.ids import REGISTRATION_TOKEN_PREFIX, hash_token, new_id, new_token
from opstage.domain.redaction import mask_token_values


async def create_token(
    ctx: UnitContext,
    actor: Actor,
    *,
    name: str,
    expires_in_seconds: int | None,
    agent_code: str | None,
    topic_tenants: list[str] | None = None,
) -> tuple[dict[str, Any], str]:
    problem = agent_code_problem(agent_code) if agent_code is not None else None
    if problem:  # the CLI comes here without the API's model
        message = f"agentCode {problem}"
        raise ValidationFailed(message, [{"path": "agentCode", "message": message}])
    name = mask_token_values(name)  # free text: a pasted token is not kept
    now = ctx.clock()
    raw = new_token(REGISTRATION_TOKEN_PREFIX)
    row = {
        "id": new_id("tok"),
        "name": name,
        "token_hash": hash_token(raw),
        "status": "ACTIVE",
        "agent_code": agent_code,
        "created_by_user_id": actor.id,
        "expires_at": now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None,
        "created_at": now,
        "updated_at": now,
        "used_at": None,
        "revoked_at": None,
        "used_by_agent_id": None,
        "topic_tenants": sorted(set(topic_tenants)) if topic_tenants else None,
    }
    async with ctx.writer() as uow:
        await uow.tokens.insert(row)
        await write_audit(
            uow,
            actor,
            "registration_token.created",
            target_type="RegistrationToken",
            target_id=str(row["id"]),
            metadata={
                "name": name,
                "agentCode": agent_code,
                "expiresInSeconds": expires_in_seconds,
                "topicTenants": topic_tenants,
            },
            now=now,
        )
        uow.record(RegistrationTokenChanged(str(row["id"]), "ACTIVE"))
    return row, raw


async def list_tokens(
    ctx: UnitContext,
    *,
    statuses: Sequence[str],
    sort: Sequence[tuple[str, bool]],
    page: int,
    page_size: int,
) -> tuple[list[dict[str, Any]], int]:
    async with ctx.reader() as uow:
        return await uow.tokens.list(  # type: ignore[no-any-return]
            statuses=statuses, sort=sort, page=page, page_size=page_size
        )


async def revoke_token(ctx: UnitContext, actor: Actor, token_id: str) -> dict[str, Any]:
    now = ctx.clock()
    async with ctx.writer() as uow:
        row = await uow.tokens.get(token_id)
        if row is None:
            raise NotFound("Registration token not found.", code="REGISTRATION_TOKEN_NOT_FOUND")
        if row["status"] == "ACTIVE":
            await uow.tokens.update(
                token_id, {"status": "REVOKED", "revoked_at": now, "updated_at": now}
            )
            await write_audit(
                uow,
                actor,
                "registration_token.revoked",
                target_type="RegistrationToken",
                target_id=token_id,
                now=now,
            )
            uow.record(RegistrationTokenChanged(token_id, "REVOKED"))
        elif row["status"] != "REVOKED":
            raise Conflict(
                f"Registration token is {row['status']} and can no longer be revoked.",
                code="CONFLICT",
                details={"status": row["status"]},
            )
        row = await uow.tokens.get(token_id)
    assert row is not None
    return dict(row)


async def delete_token(ctx: UnitContext, actor: Actor, token_id: str) -> dict[str, Any]:
    now = ctx.clock()
    async with ctx.writer() as uow:
        row = await uow.tokens.get(token_id)
        if row is None:
            raise NotFound("Registration token not found.", code="REGISTRATION_TOKEN_NOT_FOUND")
        # As the reference: only expired or revoked tokens. A USED token stays, because it
        # names the registration that created an agent.
        expired = row["expires_at"] is not None and row["expires_at"] <= now
        if row["status"] not in ("EXPIRED", "REVOKED") and not (
            row["status"] == "ACTIVE" and expired
        ):
            raise Conflict(
                "Only expired or revoked registration tokens can be deleted.",
                code="REGISTRATION_TOKEN_NOT_DELETABLE",
                details={"status": row["status"]},
            )
        await uow.tokens.delete(token_id)
        await write_audit(
            uow,
            actor,
            "registration_token.deleted",
            target_type="RegistrationToken",
            target_id=token_id,
            metadata={"name": row["name"], "status": row["status"]},
            now=now,
        )
        uow.record(RegistrationTokenChanged(token_id, "DELETED"))
    return dict(row)
