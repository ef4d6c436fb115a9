"""``opstage user …``: admin users, through the API's own use cases (``app/users.py``).

So the API's rules hold here too: 12+ character passwords, the last active owner kept, sessions
ended when a user is disabled, changes role or gets a new password, every change audited (actor
``SYSTEM cli:<os user>``). ``opstage admin create-user|reset-password|list-users`` are the older
names of ``user create|reset-password|list``, kept so existing scripts go on working.
"""

from __future__ import annotations

import asyncio

import click

from opstage.api.views import user_view as view  # --json prints what the API answers
from opstage.cli.common import (
    PASSWORD_STDIN,
    app_context,
    cli_actor,
    emit,
    json_option,
    read_password,
    table,
)
from opstage.domain.records import UserRow

ROLE = click.Choice(["owner", "operator", "viewer"])


@click.group()
def user() -> None:
    """Admin users (the same rules as the API: 12+ character passwords, last owner kept)."""


@click.group()
def admin() -> None:
    """Older names of `opstage user create|reset-password|list`."""


@user.command("list")
@click.option("--role", type=ROLE, multiple=True, help="Only these roles (repeatable).")
@click.option(
    "--status", type=click.Choice(["ACTIVE", "DISABLED"]), multiple=True, help="Only these."
)
@json_option
def user_list(role: tuple[str, ...], status: tuple[str, ...]) -> None:
    """List admin users, oldest first (--json: one JSON array)."""
    from opstage.app.users import list_users

    async def go() -> list[UserRow]:
        out: list[UserRow] = []
        async with app_context() as ctx:
            page = 1
            while True:
                rows, total = await list_users(
                    ctx,
                    roles=role,
                    statuses=status,
                    q=None,
                    sort=[("createdAt", False)],
                    page=page,
                    page_size=100,
                )
                out.extend(rows)
                if not rows or len(out) >= total:
                    return out
                page += 1

    users = [view(u) for u in asyncio.run(go())]
    rows = [
        (u["username"], u["role"], u["status"], u["lastLoginAt"] or "never", u["id"]) for u in users
    ]
    emit(users, table(("USERNAME", "ROLE", "STATUS", "LAST LOGIN", "ID"), rows))


@user.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, default="viewer", show_default=True)
@click.option("--display-name", help="Name shown in the console.")
@PASSWORD_STDIN
@json_option
def user_create(username: str, role: str, display_name: str | None, password_stdin: bool) -> None:
    """Create USERNAME with a role (the first owner of an empty database, too)."""
    from opstage.app.users import create_user

    password = read_password(password_stdin, "Password")

    async def go() -> UserRow:
        async with app_context() as ctx:
            return await create_user(
                ctx,
                cli_actor(),
                username=username,
                password=password,
                role=role,
                display_name=display_name,
            )

    row = asyncio.run(go())
    emit(view(row), f"created {row['role']} {row['username']} ({row['id']})")


def _update(username: str, *, role: str | None = None, status: str | None = None) -> UserRow:
    from opstage.app.users import UserUpdate, get_user_by_username, update_user

    changes = UserUpdate(role=role, status=status)

    async def go() -> UserRow:
        async with app_context() as ctx:
            found = await get_user_by_username(ctx, username)
            return await update_user(ctx, cli_actor(), found["id"], changes)

    return asyncio.run(go())


@user.command("disable")
@click.argument("username")
@json_option
def user_disable(username: str) -> None:
    """Disable USERNAME and end its sessions (never the last active owner)."""
    row = _update(username, status="DISABLED")
    emit(view(row), f"disabled {username}; its sessions have ended")


@user.command("enable")
@click.argument("username")
@json_option
def user_enable(username: str) -> None:
    """Enable USERNAME again."""
    row = _update(username, status="ACTIVE")
    emit(view(row), f"enabled {username}")


@user.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
@json_option
def user_set_role(username: str, role: str) -> None:
    """Give USERNAME the ROLE; a changed role ends its sessions (the last owner stays owner)."""
    row = _update(username, role=role)
    emit(view(row), f"{username} is now {row['role']}; its sessions have ended")


@user.command("reset-password")
@click.argument("username")
@PASSWORD_STDIN
@json_option
def user_reset_password(username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME; ends all of that user's sessions."""
    from opstage.app.users import get_user_by_username, reset_password

    password = read_password(password_stdin, "New password")

    async def go() -> UserRow:
        async with app_context() as ctx:
            found = await get_user_by_username(ctx, username)
            return await reset_password(ctx, cli_actor(), found["id"], password)

    row = asyncio.run(go())
    emit(view(row), f"password reset for {username}; its sessions have ended")


admin.add_command(user_create, "create-user")
admin.add_command(user_reset_password, "reset-password")
admin.add_command(user_list, "list-users")

COMMANDS = [user, admin]
