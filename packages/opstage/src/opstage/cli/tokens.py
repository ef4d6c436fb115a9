"""``opstage token create|list|revoke``: registration tokens, through ``app/tokens.py``."""

from __future__ import annotations

import asyncio
from datetime import datetime

import click

from opstage.api.views import token_view as view  # --json prints what the API answers
from opstage.cli.common import app_context, cli_actor, emit, json_option, note, table
from opstage.domain.records import RegistrationTokenRow

STATUSES = ("ACTIVE", "USED", "EXPIRED", "REVOKED")


@click.group()
def token() -> None:
    """Registration tokens."""


@token.command("create")
@click.option("--name", default="CLI registration token", show_default=True)
@click.option("--expires-in", type=int, help="Seconds until the token expires (>= 60).")
@click.option("--agent-code", help="Scope the token to one agent code.")
@json_option
def token_create(name: str, expires_in: int | None, agent_code: str | None) -> None:
    """Create a registration token and print it once.

    The token alone goes to standard output (so `TOKEN=$(opstage token create)` works); its id
    and expiry go to standard error. --json prints all of it as one object.
    """
    from opstage.app.tokens import create_token

    if expires_in is not None and expires_in < 60:
        raise click.BadParameter("must be at least 60 seconds", param_hint="--expires-in")

    async def go() -> tuple[RegistrationTokenRow, str, datetime]:
        async with app_context() as ctx:
            row, raw = await create_token(
                ctx,
                cli_actor(),
                name=name,
                expires_in_seconds=expires_in,
                agent_code=agent_code,
            )
            return row, raw, ctx.clock()

    row, raw, now = asyncio.run(go())
    shown = view(row, now)
    emit({**shown, "token": raw}, raw)
    from opstage.cli.common import wants_json

    if not wants_json():
        expiry = f"expires {shown['expiresAt']}" if shown["expiresAt"] else "never expires"
        note(f"registration token {shown['id']} ({name!r}) {expiry}; it is shown only once")


@token.command("list")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    multiple=True,
    help="Only tokens in these statuses (repeatable; EXPIRED includes past-due ACTIVE ones).",
)
@json_option
def token_list(status: tuple[str, ...]) -> None:
    """List registration tokens, newest first (never their values: they are stored hashed)."""
    from opstage.app.tokens import list_tokens

    async def go() -> tuple[list[RegistrationTokenRow], datetime]:
        out: list[RegistrationTokenRow] = []
        async with app_context() as ctx:
            page = 1
            while True:
                rows, total = await list_tokens(
                    ctx, statuses=(), sort=[("createdAt", True)], page=page, page_size=100
                )
                out.extend(rows)
                if not rows or len(out) >= total:
                    return out, ctx.clock()
                page += 1

    rows, now = asyncio.run(go())
    tokens = [view(r, now) for r in rows]
    if status:
        tokens = [t for t in tokens if t["status"] in status]
    lines = table(
        ("ID", "NAME", "STATUS", "AGENT CODE", "EXPIRES", "CREATED"),
        [
            (
                t["id"],
                t["name"],
                t["status"],
                t["agentCode"] or "-",
                t["expiresAt"] or "never",
                t["createdAt"],
            )
            for t in tokens
        ],
    )
    emit(tokens, lines)


@token.command("revoke")
@click.argument("token_id")
@json_option
def token_revoke(token_id: str) -> None:
    """Revoke the registration token TOKEN_ID (see `opstage token list`).

    Revoking a revoked token is no error; a used or expired one cannot be revoked.
    """
    from opstage.app.tokens import revoke_token

    async def go() -> tuple[RegistrationTokenRow, datetime]:
        async with app_context() as ctx:
            return await revoke_token(ctx, cli_actor(), token_id), ctx.clock()

    row, now = asyncio.run(go())
    emit(view(row, now), f"revoked {token_id} ({row['name']!r})")


COMMANDS = [token]
