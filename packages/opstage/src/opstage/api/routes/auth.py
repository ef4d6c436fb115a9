"""Admin login, logout, current session and CSRF rotation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from opstage.api.deps import SESSION_COOKIE, Ctx, admin_actor, read_json, request_actor, require
from opstage.api.envelope import ok
from opstage.api.models import LoginRequest
from opstage.api.rbac import READ
from opstage.api.views import user_view
from opstage.app import auth
from opstage.app.auth import SessionInfo
from opstage.domain.timeutil import iso

router = APIRouter(prefix="/api/admin/auth", tags=["AdminAuth"])
Session = Annotated[SessionInfo, Depends(require(READ))]


def _session_data(session: SessionInfo) -> dict[str, object]:
    return {
        "user": user_view(session.user),
        "csrfToken": session.csrf_token,
        "expiresAt": iso(session.expires_at),
    }


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    body = await read_json(request, LoginRequest)
    raw, session = await auth.login(ctx, request_actor(request), body.username, body.password)
    response = ok(_session_data(session))
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=ctx.settings.session_ttl_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
    )
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, session: Session) -> Response:
    await auth.logout(ctx, admin_actor(request, session), session)
    response = ok()
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=ctx.settings.secure_cookies
    )
    return response


@router.get("/me")
async def me(session: Session) -> Response:
    return ok(_session_data(session))


@router.get("/csrf")
async def csrf(request: Request, ctx: Ctx, session: Session) -> Response:
    token = await auth.rotate_csrf(ctx, admin_actor(request, session), session)
    return ok({"csrfToken": token, "expiresAt": iso(session.expires_at)})
