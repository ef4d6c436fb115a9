"""Admin users (owner only): list, create, update, reset password, delete.

``DELETE /api/admin/users/{userId}`` is an addition to the contract (docs/compatibility.md):
the issue requires that the last active owner cannot be deleted, so deleting exists.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok, page
from opstage.api.models import CreateUserRequest, ResetUserPasswordRequest, UpdateUserRequest
from opstage.api.queries import PageNo, PageSize, parse_sort, search_text
from opstage.api.views import user_view
from opstage.app import users
from opstage.app.auth import SessionInfo
from opstage.domain.errors import ValidationFailed

router = APIRouter(prefix="/api/admin/users", tags=["AdminUsers"])
Owner = Annotated[SessionInfo, Depends(require("users:admin"))]


@router.get("")
async def list_(
    ctx: Ctx,
    _: Owner,
    page_: PageNo = 1,
    page_size: PageSize = 20,
    sort: str | None = None,
    role: Annotated[list[Literal["owner", "operator", "viewer"]] | None, Query()] = None,
    status: Annotated[list[Literal["ACTIVE", "DISABLED"]] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=160)] = None,
) -> Response:
    rows, total = await users.list_users(
        ctx,
        roles=role or [],
        statuses=status or [],
        q=search_text(q),
        sort=parse_sort(sort, ("createdAt", "username")),
        page=page_,
        page_size=page_size,
    )
    return page([user_view(r) for r in rows], page=page_, page_size=page_size, total=total)


@router.post("")
async def create(request: Request, ctx: Ctx, session: Owner) -> Response:
    body = await read_json(request, CreateUserRequest)
    row = await users.create_user(
        ctx,
        admin_actor(request, session),
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.displayName,
    )
    return ok(user_view(row))


@router.patch("/{userId}")
async def update(request: Request, ctx: Ctx, session: Owner, userId: str) -> Response:
    body = await read_json(request, UpdateUserRequest)
    changes = users.UserUpdate(
        role=body.role,
        status=body.status,
        display_name=body.displayName,
        set_display_name="displayName" in body.model_fields_set,
    )
    if changes == users.UserUpdate():
        raise ValidationFailed(
            "Request body validation failed.",
            [{"path": "", "message": "at least one of displayName, role, status is required"}],
        )
    row = await users.update_user(ctx, admin_actor(request, session), userId, changes)
    return ok(user_view(row))


@router.post("/{userId}/reset-password")
async def reset_password(request: Request, ctx: Ctx, session: Owner, userId: str) -> Response:
    body = await read_json(request, ResetUserPasswordRequest)
    keep = session.session_id if userId == session.user_id else None
    row = await users.reset_password(
        ctx, admin_actor(request, session), userId, body.password, keep_session=keep
    )
    return ok(user_view(row))


@router.delete("/{userId}")
async def delete(request: Request, ctx: Ctx, session: Owner, userId: str) -> Response:
    row = await users.delete_user(ctx, admin_actor(request, session), userId)
    return ok(user_view(row))
