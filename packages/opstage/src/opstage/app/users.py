"""Admin users: create, update role/status/name, reset password, delete — owner-only at the edge.

Invariants kept here, not in the routes (the CLI goes through the same functions): the last
active owner cannot be demoted, disabled or deleted; disabling a user, changing its role or
deleting it ends its sessions; a password change ends the user's other sessions; passwords are
at least 12 characters and differ from the username (``domain.identity``: one rule, one
message). Usernames are NFKC-normalised and trimmed, refuse invisible and mixed-script
characters, and are unique without regard to case. Every change is audited in the transaction
that makes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from opstage.app.audit import write_audit
from opstage.app.auth import hash_password
from opstage.app.context import Actor, UnitContext
from opstage.domain.errors import Conflict, NotFound, ValidationFailed
from opstage.domain.events import UserChanged
from opstage.domain.identity import normalize_username, password_problem, username_key
from opstage.domain.ids import new_id
from opstage.domain.redaction import mask_strings

Row = dict[str, Any]
ROLES = ("owner", "operator", "viewer")


def _check_password(username: str, password: str) -> None:
    problem = password_problem(username, password)
    if problem:
        raise ValidationFailed(problem, [{"path": "password", "message": problem}])


async def list_users(
    ctx: UnitContext,
    *,
    roles: Sequence[str],
    statuses: Sequence[str],
    q: str | None,
    sort: list[tuple[str, bool]],
    page: int,
    page_size: int,
) -> tuple[list[Row], int]:
    async with ctx.reader() as uow:
        rows, total = await uow.users.list(
            roles=roles, statuses=statuses, q=q, sort=sort, page=page, page_size=page_size
        )
    return [dict(r) for r in rows], int(total)


async def create_user(
    ctx: UnitContext,
    actor: Actor,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None,
) -> Row:
    try:
        username = normalize_username(username)
    except ValueError as exc:
        message = f"username {exc}"
        raise ValidationFailed(message, [{"path": "username", "message": message}]) from None
    _check_password(username, password)
    key = username_key(username)
    # Slow on purpose: hashed in a thread, outside the write transaction.
    password_hash = await asyncio.to_thread(hash_password, password)
    now = ctx.clock()
    row: Row = {
        "id": new_id("usr"),
        "username": username,
        "username_key": key,
        "display_name": mask_strings(display_name),
        "role": role,
        "status": "ACTIVE",
        "password_hash": password_hash,
        "created_at": now,
        "updated_at": now,
    }
    async with ctx.writer() as uow:
        if await uow.users.get_by_username_key(key) is not None:
            raise Conflict(
                f"A user named {username!r} already exists (usernames ignore case).",
                code="USER_ALREADY_EXISTS",
            )
        await uow.users.insert(row)
        await write_audit(
            uow,
            actor,
            "user.created",
            target_type="User",
            target_id=row["id"],
            metadata={"username": username, "role": role},
            now=now,
        )
        uow.record(UserChanged(row["id"], "created"))
    return row


async def update_user(ctx: UnitContext, actor: Actor, user_id: str, changes: Row) -> Row:
    now = ctx.clock()
    async with ctx.writer() as uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("User not found.", code="USER_NOT_FOUND")
        values: Row = {}
        if "displayName" in changes:
            values["display_name"] = mask_strings(changes["displayName"])
        if "role" in changes and changes["role"] != user["role"]:
            values["role"] = changes["role"]
        if "status" in changes and changes["status"] != user["status"]:
            values["status"] = changes["status"]
        losing_owner = (
            user["role"] == "owner"
            and user["status"] == "ACTIVE"
            and (
                values.get("role", "owner") != "owner" or values.get("status", "ACTIVE") != "ACTIVE"
            )
        )
        if losing_owner and await uow.users.lock_active_owners() <= 1:
            raise Conflict(
                "The last active owner cannot be demoted or disabled.",
                code="LAST_OWNER_REQUIRED",
            )
        if not values:
            return dict(user)
        values["updated_at"] = now
        await uow.users.update(user_id, values)
        ended = 0
        if values.get("status") == "DISABLED" or "role" in values:
            # A session carries its role; a changed role or a disabled user starts over.
            ended = await uow.sessions.delete_for_user(user_id)
        await write_audit(
            uow,
            actor,
            "user.updated",
            target_type="User",
            target_id=user_id,
            metadata={
                # The reference's keys: the user's role and status after the change.
                "role": values.get("role", user["role"]),
                "status": values.get("status", user["status"]),
                "changes": {
                    k: {"from": user[k], "to": v} for k, v in values.items() if k != "updated_at"
                },
                "sessionsEnded": ended,
            },
            now=now,
        )
        uow.record(UserChanged(user_id, "updated"))
        fresh = await uow.users.get(user_id)
    assert fresh is not None
    return dict(fresh)


async def reset_password(
    ctx: UnitContext, actor: Actor, user_id: str, password: str, *, keep_session: str | None = None
) -> Row:
    async with ctx.reader() as uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("User not found.", code="USER_NOT_FOUND")
    _check_password(user["username"], password)
    password_hash = await asyncio.to_thread(hash_password, password)
    now = ctx.clock()
    async with ctx.writer() as uow:
        if await uow.users.get(user_id) is None:  # deleted meanwhile
            raise NotFound("User not found.", code="USER_NOT_FOUND")
        await uow.users.update(user_id, {"password_hash": password_hash, "updated_at": now})
        ended = await uow.sessions.delete_for_user(user_id, except_id=keep_session)
        await write_audit(
            uow,
            actor,
            "user.password.reset",
            target_type="User",
            target_id=user_id,
            metadata={"username": user["username"], "sessionsEnded": ended},
            now=now,
        )
        uow.record(UserChanged(user_id, "password_reset"))
        fresh = await uow.users.get(user_id)
    assert fresh is not None
    return dict(fresh)


async def delete_user(ctx: UnitContext, actor: Actor, user_id: str) -> Row:
    """Delete a user; its sessions go with it. Never the last active owner (yourself included)."""
    now = ctx.clock()
    async with ctx.writer() as uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("User not found.", code="USER_NOT_FOUND")
        if (
            user["role"] == "owner"
            and user["status"] == "ACTIVE"
            and await uow.users.lock_active_owners() <= 1
        ):
            raise Conflict("The last active owner cannot be deleted.", code="LAST_OWNER_REQUIRED")
        ended = await uow.sessions.delete_for_user(user_id)
        await uow.users.delete(user_id)
        await write_audit(
            uow,
            actor,
            "user.deleted",
            target_type="User",
            target_id=user_id,
            metadata={"username": user["username"], "role": user["role"], "sessionsEnded": ended},
            now=now,
        )
        uow.record(UserChanged(user_id, "deleted"))
    return dict(user)


async def get_user_by_username(ctx: UnitContext, username: str) -> Row:
    async with ctx.reader() as uow:
        user = await uow.users.get_by_username_key(username_key(username))
    if user is None:
        raise NotFound(f"No user named {username!r}.", code="USER_NOT_FOUND")
    return dict(user)
