"""Request dependencies: the context, admin sessions (+CSRF, +role) and agent bearer auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from opstage.api.errors import issues_from
from opstage.api.json_bounds import check_storable
from opstage.api.rbac import allowed
from opstage.app.agents import AgentPrincipal, authenticate_agent
from opstage.app.auth import SessionInfo, check_csrf, resolve_session
from opstage.app.context import Actor, AppContext
from opstage.domain.errors import DomainError, Forbidden, ValidationFailed

SESSION_COOKIE = "opstage_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
M = TypeVar("M", bound=BaseModel)


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def _ctx(request: Request) -> AppContext:
    # async on purpose: a plain ``def`` dependency runs in a thread pool on every request.
    return get_ctx(request)


Ctx = Annotated[AppContext, Depends(_ctx)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_actor(
    request: Request, *, type_: str = "USER", id_: str | None = None, role: str | None = None
) -> Actor:
    return Actor(
        type_,
        id_,
        client_ip(request),
        request.headers.get("user-agent"),
        getattr(request.state, "request_id", None),
        role,
    )


def require(
    permission: str, *, csrf: bool | None = None
) -> Callable[[Request], Awaitable[SessionInfo]]:
    """Session (401) → CSRF on state changes (403) → role (403), in that order."""

    async def dependency(request: Request) -> SessionInfo:
        ctx = get_ctx(request)
        session = await resolve_session(ctx, request.cookies.get(SESSION_COOKIE))
        needs_csrf = csrf if csrf is not None else request.method not in SAFE_METHODS
        if needs_csrf:
            check_csrf(session, request.headers.get("x-csrf-token"))
        if not allowed(session.role, permission):
            raise Forbidden(
                "Insufficient permissions.",
                code="FORBIDDEN",
                details={"required": permission, "role": session.role},
            )
        request.state.session = session
        return session

    return dependency


def admin_actor(request: Request, session: SessionInfo) -> Actor:
    return request_actor(request, id_=session.user_id, role=session.role)


async def agent_principal(request: Request, agentId: str) -> AgentPrincipal:
    return await authenticate_agent(get_ctx(request), agentId, request.headers.get("authorization"))


Agent = Annotated[AgentPrincipal, Depends(agent_principal)]


async def read_json(
    request: Request,
    model: type[M],
    *,
    required: bool = True,
    limit: int | None = None,
    too_large_code: str = "PAYLOAD_TOO_LARGE",
) -> M:
    """Parse the body after authentication ran, with the contract's error codes."""
    ctx = get_ctx(request)
    limit = limit or ctx.settings.request_body_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise DomainError(f"Request body exceeds {limit} bytes.", code=too_large_code)
    raw = await request.body()
    if len(raw) > limit:
        raise DomainError(f"Request body exceeds {limit} bytes.", code=too_large_code)
    if not raw.strip():
        if required:
            raise ValidationFailed(
                "Request body is required.", [{"path": "", "message": "body is required"}]
            )
        raw = b"{}"
    else:
        ctype = request.headers.get("content-type", "")
        if ctype and "json" not in ctype.split(";")[0].lower():
            raise DomainError(
                "Content-Type must be application/json.", code="UNSUPPORTED_MEDIA_TYPE"
            )
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            "Request body validation failed.", issues_from(body_issues(exc))
        ) from None
    check_storable(raw, body)
    return body


def body_issues(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            msg = f"Malformed JSON: {err.get('ctx', {}).get('error', msg)}"
        out.append({"loc": err.get("loc", ()), "msg": msg})
    return out
