"""Admin identity: bootstrap, login/logout, server-side sessions and CSRF tokens.

Sessions live in the database, so they survive a restart and end everywhere at once when a
user is disabled. The cookie carries a random token; the database keeps only its HMAC under
the session secret, so neither a database dump nor a guessed secret alone yields a session.
Passwords use argon2id. Failed logins from one address are slowed down with a growing delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.domain.errors import DomainError, Forbidden, Unauthorized
from opstage.domain.identity import normalize_username, password_problem, username_key
from opstage.domain.ids import new_id
from opstage.domain.records import UserProfile
from opstage.settings import Settings, SettingsError

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps timing uniform.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
SESSION_TOUCH_INTERVAL = timedelta(seconds=60)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def session_token_hash(settings: Settings, raw: str) -> str:
    return hmac.new(settings.secret_bytes, raw.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    user_id: str
    username: str
    role: str
    csrf_token: str
    expires_at: datetime
    user: UserProfile


class LoginThrottle:
    """Per-address failure counter: past ``max_failures`` each try waits 2^n s (capped)."""

    def __init__(self, max_failures: int, max_delay_seconds: int) -> None:
        self.max_failures = max_failures
        self.max_delay = max_delay_seconds
        self._state: dict[str, tuple[int, float]] = {}

    def retry_after(self, address: str) -> float:
        failures, last = self._state.get(address, (0, 0.0))
        if failures < self.max_failures:
            return 0.0
        delay = min(float(self.max_delay), 2.0 ** (failures - self.max_failures + 1))
        return max(0.0, float(last) + delay - time.monotonic())

    def failed(self, address: str) -> int:
        failures, _ = self._state.get(address, (0, 0.0))
        if len(self._state) > 10_000:
            self._state.clear()  # bound memory under a spray of addresses
        self._state[address] = (failures + 1, time.monotonic())
        return failures + 1

    def succeeded(self, address: str) -> None:
        self._state.pop(address, None)


class AuthContext(UnitContext, Protocol):
    """What a login uses beyond units of work (``AppContext`` is one; ADR 0010): the
    per-address throttle of failed attempts."""

    login_throttle: LoginThrottle


async def bootstrap_owner(ctx: UnitContext) -> str | None:
    """Create the first owner when there are no users. Returns a generated password, if any."""
    s = ctx.settings
    async with ctx.writer() as uow:
        if await uow.users.count() > 0:
            return None
        generated = None
        username = s.admin_username or ("admin" if s.dev_mode else None)
        password = s.admin_password.get_secret_value() if s.admin_password else None
        if password is None and s.dev_mode:
            generated = password = secrets.token_urlsafe(18)
        if not username or not password:
            raise SettingsError(
                "No admin user exists. Set OPSTAGE_ADMIN_USERNAME and OPSTAGE_ADMIN_PASSWORD "
                "for the first start (or use OPSTAGE_DEV_MODE=true to have a password generated)."
            )
        try:
            username = normalize_username(username)
        except ValueError as exc:
            raise SettingsError(f"OPSTAGE_ADMIN_USERNAME is not acceptable: it {exc}") from None
        problem = password_problem(username, password)
        if problem:
            raise SettingsError(f"OPSTAGE_ADMIN_PASSWORD is not acceptable: {problem}")
        now = ctx.clock()
        user_id = new_id("usr")
        await uow.users.insert(
            {
                "id": user_id,
                "username": username,
                "username_key": username_key(username),
                "display_name": "Administrator",
                "role": "owner",
                "status": "ACTIVE",
                "password_hash": hash_password(password),
                "last_login_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        await write_audit(
            uow,
            Actor.system(),
            "system.bootstrap.completed",
            target_type="User",
            target_id=user_id,
            metadata={"username": username},
            now=now,
        )
    return generated


async def login(
    ctx: AuthContext, actor: Actor, username: str, password: str
) -> tuple[str, SessionInfo]:
    address = actor.ip or "unknown"
    wait = ctx.login_throttle.retry_after(address)
    if wait > 0:
        error = DomainError(
            "Too many failed logins from this address; try again later.",
            code="RATE_LIMITED",
            retry_after_seconds=int(wait) + 1,
            details={"retryAfterSeconds": int(wait) + 1},
        )
        async with ctx.writer() as uow:
            await write_audit(
                uow,
                actor,
                "session.login.failed",
                result="FAILURE",
                message="Login throttled",
                metadata={"username": username[:320], "errorCode": error.code},
                now=ctx.clock(),
            )
        raise error
    async with ctx.reader() as uow:
        user = await uow.users.get_by_username_key(username_key(username))
    # argon2 is CPU-bound: keep the event loop free while it runs.
    ok = await asyncio.to_thread(
        verify_password, user["password_hash"] if user else _DUMMY_HASH, password
    )
    if not ok or user is None or user["status"] != "ACTIVE":
        failures = ctx.login_throttle.failed(address)
        async with ctx.writer() as uow:
            await write_audit(
                uow,
                actor,
                "session.login.failed",
                result="FAILURE",
                message="Invalid login attempt",
                metadata={
                    "username": username[:320],
                    "failures": failures,
                    "errorCode": "LOGIN_FAILED",
                },
                now=ctx.clock(),
            )
        raise Unauthorized("Invalid username or password.", code="LOGIN_FAILED")
    ctx.login_throttle.succeeded(address)
    now = ctx.clock()
    raw = secrets.token_urlsafe(32)
    session_id = new_id("ses")
    csrf = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=ctx.settings.session_ttl_seconds)
    async with ctx.writer() as uow:
        await uow.sessions.insert(
            {
                "id": session_id,
                "token_hash": session_token_hash(ctx.settings, raw),
                "user_id": user["id"],
                "csrf_token": csrf,
                "ip": actor.ip,
                "user_agent": (actor.user_agent or "")[:300] or None,
                "created_at": now,
                "expires_at": expires,
                "last_seen_at": now,
            }
        )
        await uow.users.update(user["id"], {"last_login_at": now, "updated_at": now})
        await uow.sessions.delete_expired(now)
        await write_audit(
            uow,
            Actor("USER", user["id"], actor.ip, actor.user_agent, actor.request_id),
            "session.login.succeeded",
            target_type="User",
            target_id=user["id"],
            now=now,
        )
    user = {**user, "last_login_at": now, "updated_at": now}
    return raw, SessionInfo(
        session_id, user["id"], user["username"], user["role"], csrf, expires, user
    )


async def resolve_session(ctx: UnitContext, raw: str | None) -> SessionInfo:
    if not raw:
        raise Unauthorized("Authentication required.", code="UNAUTHORIZED")
    now = ctx.clock()
    async with ctx.reader() as uow:
        row = await uow.sessions.by_token_hash(session_token_hash(ctx.settings, raw))
    if row is None:
        raise Unauthorized("Session is invalid or has ended; log in again.", code="SESSION_INVALID")
    if row["expires_at"] <= now:
        async with ctx.writer() as uow:
            await uow.sessions.delete(row["id"])
        raise Unauthorized("Session expired; log in again.", code="SESSION_EXPIRED")
    if row["user_status"] != "ACTIVE":
        raise Unauthorized("Session is invalid or has ended; log in again.", code="SESSION_INVALID")
    if now - row["last_seen_at"] > SESSION_TOUCH_INTERVAL:
        async with ctx.writer() as uow:
            await uow.sessions.update(row["id"], {"last_seen_at": now})
    user: UserProfile = {
        "id": row["user_id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "role": row["role"],
        "status": row["user_status"],
        "last_login_at": row["last_login_at"],
        "created_at": row["user_created_at"],
        "updated_at": row["user_updated_at"],
    }
    return SessionInfo(
        row["id"],
        row["user_id"],
        row["username"],
        row["role"],
        row["csrf_token"],
        row["expires_at"],
        user,
    )


def check_csrf(session: SessionInfo, header: str | None) -> None:
    if not header or not hmac.compare_digest(header.encode(), session.csrf_token.encode()):
        raise Forbidden("CSRF token missing or invalid.", code="CSRF_INVALID")


async def logout(ctx: UnitContext, actor: Actor, session: SessionInfo) -> None:
    async with ctx.writer() as uow:
        await uow.sessions.delete(session.session_id)
        await write_audit(
            uow,
            actor,
            "session.logout",
            target_type="User",
            target_id=session.user_id,
            now=ctx.clock(),
        )


async def rotate_csrf(ctx: UnitContext, actor: Actor, session: SessionInfo) -> str:
    csrf = secrets.token_urlsafe(32)
    async with ctx.writer() as uow:
        await uow.sessions.update(session.session_id, {"csrf_token": csrf})
        await write_audit(
            uow,
            actor,
            "session.csrf.refreshed",
            target_type="User",
            target_id=session.user_id,
            now=ctx.clock(),
        )
    return csrf
