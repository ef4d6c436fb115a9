"""The ``opstage`` command.

``serve``, ``migrate``, ``config show|docs``, ``admin create-user|reset-password|list-users``,
``token create``, ``backup``, ``restore``, ``version`` — each with ``--help``. Errors are one
clear line on stderr and exit status 1 (2 for a usage error), never a traceback unless
``opstage --debug …``. One-off commands run the same use cases as the API (so they are validated
and audited the same way, with the actor ``SYSTEM cli:<os user>``); they need the database at
the current schema (``opstage migrate``) but never create the first owner on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import SecretStr, ValidationError

from opstage import __version__
from opstage.settings import MIN_SECRET_LENGTH, Settings, SettingsError

if TYPE_CHECKING:  # the app is imported lazily, so `opstage --help` stays fast
    from opstage.app.context import Actor, AppContext


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error is about (``port`` → ``OPSTAGE_PORT``)."""
    name = str(loc[0]) if loc else ""
    info = Settings.model_fields.get(name)
    if info is None:
        return ".".join(map(str, loc)) or "settings"
    from opstage.cli.config_docs import env_names

    return env_names(name, info)[0]


def describe(exc: BaseException) -> str:
    """One line that says what went wrong, without internals or secrets."""
    from opstage.domain.errors import DomainError, ValidationFailed
    from opstage.domain.redaction import mask_token_values

    if isinstance(exc, ValidationFailed):
        issues = (exc.details or {}).get("issues") or []
        parts = [f"{i['path']}: {i['message']}" if i.get("path") else i["message"] for i in issues]
        text = "; ".join(parts) if parts else exc.message
    elif isinstance(exc, DomainError):
        text = f"{exc.message} ({exc.code})"
    elif isinstance(exc, ConnectionError | TimeoutError):
        text = f"cannot reach the database: {exc}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif type(exc).__module__.split(".")[0] in ("sqlalchemy", "asyncpg", "sqlite3"):
        origin = getattr(exc, "orig", None) or exc
        first = (str(origin).strip().splitlines() or [type(origin).__name__])[0]
        text = f"database error: {first[:300]}"
    elif isinstance(exc, SettingsError | ValueError) or type(exc).__name__ == "BackupError":
        text = str(exc)
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (run `opstage --debug …` for details)"
    return mask_token_values(text.strip()) if "opstage_" in text else text.strip()


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # --help, usage errors and ^C: click reports those itself
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"opstage: error: {describe(exc)}", err=True)
            sys.exit(1)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, "--version", prog_name="opstage", message="%(version)s")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Opstage: the control plane for Capsule Services.

    Settings come from OPSTAGE_* environment variables (and DATABASE_URL); see
    `opstage config show` and docs/configuration.md.
    """
    ctx.obj = {"debug": debug}


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


# --------------------------------------------------------------------------------- serve, migrate
@cli.command()
@click.option("--host", help="Listen address (OPSTAGE_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (OPSTAGE_PORT, default 8080).")
@click.option("--dev", is_flag=True, default=None, help="Development mode (OPSTAGE_DEV_MODE).")
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply database migrations before starting.",
)
def serve(host: str | None, port: int | None, dev: bool | None, migrate: bool) -> None:
    """Run the API and background services in one process."""
    import uvicorn

    from opstage import logs
    from opstage.api.http_protocol import DeadlineHttpProtocol
    from opstage.server import create_server_app
    from opstage.store.engine import engine_kind
    from opstage.store.migrate import upgrade

    settings = _settings(host=host, port=port, dev_mode=dev)
    logs.configure(settings.log_level, settings.log_format)
    if migrate:
        upgrade(settings.database_url)
    app = create_server_app(settings)
    click.echo(
        f"Opstage {__version__} on http://{settings.host}:{settings.port}  "
        f"(database: {engine_kind(settings.database_url)}"
        f"{', dev mode' if settings.dev_mode else ''})",
        err=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
        http=DeadlineHttpProtocol.with_deadlines(
            settings.http_header_timeout_seconds, settings.http_body_timeout_seconds
        ),
    )


@cli.group(invoke_without_command=True)
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Database schema migrations (without a subcommand: upgrade to the latest)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(migrate_up, revision="head")


@migrate.command("up")
@click.argument("revision", default="head")
def migrate_up(revision: str) -> None:
    """Upgrade to REVISION (default: head)."""
    from opstage.store import migrate as m

    settings = _settings()
    m.upgrade(settings.database_url, revision)
    click.echo(f"database at {m.current(settings.database_url)}")


@migrate.command("down")
@click.argument("revision", default="base")
def migrate_down(revision: str) -> None:
    """Downgrade to REVISION (default: base, which drops everything)."""
    from opstage.store import migrate as m

    settings = _settings()
    m.downgrade(settings.database_url, revision)
    click.echo(f"database at {m.current(settings.database_url) or 'base'}")


@migrate.command("current")
def migrate_current() -> None:
    """Show the database's revision."""
    from opstage.store import migrate as m
    from opstage.store.engine import sqlite_path

    url = _settings().database_url
    path = sqlite_path(url)
    if path and path != ":memory:" and not Path(path).exists():
        click.echo("base (empty)")  # no database file yet; opening one would create it
        return
    click.echo(m.current(url) or "base (empty)")


# -------------------------------------------------------------------------------------- config
@cli.group()
def config() -> None:
    """Inspect configuration."""


@config.command("show")
def config_show() -> None:
    """Print the effective settings as JSON, secrets masked."""
    click.echo(json.dumps(_settings().masked(), indent=2, default=str))


@config.command("docs")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output (docs/configuration.md).",
)
@click.option("--check", is_flag=True, help="Only compare with --output; exit 1 if it differs.")
def config_docs(output: Path | None, check: bool) -> None:
    """Generate the configuration reference (Markdown) from the settings tree."""
    from opstage.cli.config_docs import render

    text = render()
    if output is None:
        if check:
            raise click.UsageError("--check needs --output")
        click.echo(text, nl=False)
        return
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            raise SettingsError(f"{output} is out of date; run `opstage config docs -o {output}`")
        click.echo(f"{output} is up to date", err=True)
        return
    output.write_text(text)
    click.echo(f"wrote {output}", err=True)


# ------------------------------------------------------------------------- one-off app context
def _cli_actor() -> Actor:
    from opstage.app.context import Actor

    try:
        who = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        who = "unknown"
    return Actor("SYSTEM", f"cli:{who}"[:64])


@contextlib.asynccontextmanager
async def _app_context() -> AsyncIterator[AppContext]:
    """The application context for one command: no owner bootstrap, no background services."""
    from opstage.runtime import Runtime

    settings = _settings()
    secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
    if len(secret) < MIN_SECRET_LENGTH:
        # The CLI issues no sessions; a throwaway key keeps it from needing (or writing) one.
        settings = settings.model_copy(
            update={"session_secret": SecretStr(secrets.token_urlsafe(48))}
        )
    runtime = await Runtime.start(settings, bootstrap=False)
    try:
        yield runtime.ctx
    finally:
        await runtime.stop()


def _read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: no password on standard input")
        return password
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


# --------------------------------------------------------------------------------------- admin
@cli.group()
def admin() -> None:
    """Admin users (the same rules as the API: 12+ character passwords, last owner kept)."""


PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)


@admin.command("create-user")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["owner", "operator", "viewer"]),
    default="viewer",
    show_default=True,
)
@click.option("--display-name", help="Name shown in the console.")
@PASSWORD_STDIN
def admin_create_user(
    username: str, role: str, display_name: str | None, password_stdin: bool
) -> None:
    """Create USERNAME with a role (the first owner of an empty database, too)."""
    from opstage.app.users import create_user

    password = _read_password(password_stdin, "Password")

    async def go() -> dict[str, Any]:
        async with _app_context() as ctx:
            return await create_user(
                ctx,
                _cli_actor(),
                username=username,
                password=password,
                role=role,
                display_name=display_name,
            )

    row = asyncio.run(go())
    click.echo(f"created {row['role']} {row['username']} ({row['id']})")


@admin.command("reset-password")
@click.argument("username")
@PASSWORD_STDIN
def admin_reset_password(username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME; ends all of that user's sessions."""
    from opstage.app.users import get_user_by_username, reset_password

    password = _read_password(password_stdin, "New password")

    async def go() -> None:
        async with _app_context() as ctx:
            user = await get_user_by_username(ctx, username)
            await reset_password(ctx, _cli_actor(), user["id"], password)

    asyncio.run(go())
    click.echo(f"password reset for {username}; its sessions have ended")


@admin.command("list-users")
@click.option("--role", type=click.Choice(["owner", "operator", "viewer"]), multiple=True)
@click.option("--status", type=click.Choice(["ACTIVE", "DISABLED"]), multiple=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def admin_list_users(role: tuple[str, ...], status: tuple[str, ...], as_json: bool) -> None:
    """List admin users, oldest first."""
    from opstage.app.users import list_users
    from opstage.domain.timeutil import iso

    async def go() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with _app_context() as ctx:
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

    users = [
        {
            "id": u["id"],
            "username": u["username"],
            "displayName": u["display_name"],
            "role": u["role"],
            "status": u["status"],
            "lastLoginAt": iso(u["last_login_at"]),
            "createdAt": iso(u["created_at"]),
        }
        for u in asyncio.run(go())
    ]
    if as_json:
        for u in users:
            click.echo(json.dumps(u))
        return
    header = ("USERNAME", "ROLE", "STATUS", "LAST LOGIN", "ID")
    table = [header] + [
        (u["username"], u["role"], u["status"], u["lastLoginAt"] or "never", u["id"]) for u in users
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# --------------------------------------------------------------------------------------- token
@cli.group()
def token() -> None:
    """Registration tokens."""


@token.command("create")
@click.option("--name", default="CLI registration token", show_default=True)
@click.option("--expires-in", type=int, help="Seconds until the token expires (>= 60).")
@click.option("--agent-code", help="Scope the token to one agent code.")
def token_create(name: str, expires_in: int | None, agent_code: str | None) -> None:
    """Create a registration token and print it once."""
    from opstage.app.tokens import create_token

    if expires_in is not None and expires_in < 60:
        raise click.BadParameter("must be at least 60 seconds", param_hint="--expires-in")

    async def go() -> str:
        async with _app_context() as ctx:
            _, raw = await create_token(
                ctx,
                _cli_actor(),
                name=name,
                expires_in_seconds=expires_in,
                agent_code=agent_code,
            )
            return raw

    click.echo(asyncio.run(go()))


# ------------------------------------------------------------------------------ backup, restore
@cli.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="File (or directory) to write; default: a new file in OPSTAGE_BACKUP_DIR "
    "(<data_dir>/backups).",
)
def backup(output: Path | None) -> None:
    """Back up the SQLite database online (the server may keep running).

    Prints the backup's path. Works at any schema revision, e.g. right before `opstage
    migrate`. On PostgreSQL use pg_dump.
    """
    from opstage.app.backup import copy_database, default_backup_dir, new_backup_path, unsupported
    from opstage.domain.timeutil import utcnow
    from opstage.store.backup import backup_for
    from opstage.store.engine import engine_kind

    settings = _settings()
    port = backup_for(settings.database_url)
    if port is None:
        raise unsupported(engine_kind(settings.database_url))
    if output is None:
        destination = new_backup_path(default_backup_dir(settings), utcnow())
    elif output.is_dir():
        destination = new_backup_path(output, utcnow())
    else:
        destination = output
    if destination.exists():
        raise SettingsError(f"{destination} already exists; choose another --output")
    size, sha256 = asyncio.run(copy_database(port, destination))
    click.echo(str(destination))
    click.echo(f"backup of {port.database}: {size} bytes, sha256 {sha256}", err=True)


@cli.command()
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing database (it is kept beside it as *.pre-restore-<time>).",
)
def restore(backup_file: Path, force: bool) -> None:
    """Restore BACKUP_FILE as the SQLite database of this configuration.

    Stop the server first. The backup is checked (SQLite integrity, an Opstage schema this
    version knows) before anything is touched; an older schema is upgraded by `opstage migrate`
    or by the next `opstage serve`.
    """
    from alembic.script import ScriptDirectory

    from opstage.store.backup import BackupError, inspect_backup, restore_sqlite
    from opstage.store.engine import sqlite_path
    from opstage.store.migrate import alembic_config, head_revision

    settings = _settings()
    target = sqlite_path(settings.database_url)
    if target is None or target == ":memory:":
        raise SettingsError(
            "`opstage restore` restores SQLite backups; on PostgreSQL use pg_restore"
        )
    revision = inspect_backup(backup_file)
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision is None:
        raise BackupError(f"{backup_file} holds no Opstage schema (no alembic_version)")
    if revision not in known:
        raise BackupError(
            f"{backup_file} is at schema {revision}, unknown to Opstage {__version__} "
            "(made by a newer version?)"
        )
    result = restore_sqlite(backup_file, Path(target), replace=force)
    click.echo(f"restored {backup_file} to {result.target} (schema {revision})")
    if result.previous is not None:
        click.echo(f"the previous database is kept at {result.previous}", err=True)
    if revision != head_revision():
        click.echo("run `opstage migrate` (or `opstage serve`) to upgrade its schema", err=True)


def main() -> None:
    cli(prog_name="opstage")


if __name__ == "__main__":
    main()
