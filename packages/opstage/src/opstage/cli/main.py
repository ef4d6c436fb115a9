"""The ``opstage`` command.

``serve``, ``migrate``, ``config show|docs``, ``user list|create|disable|enable|set-role|
reset-password`` (and the older ``admin`` names), ``token create|list|revoke``, ``backup``,
``restore``, ``audit export|prune``, ``demo``, ``version`` — each with ``--help`` and ``--json``.
Errors are one clear line on stderr and exit status 1 (2 for a usage error), never a traceback
unless ``opstage --debug …``. One-off commands run the same use cases as the API (so they are
validated and audited the same way, with the actor ``SYSTEM cli:<os user>``); they need the
database at the current schema (``opstage migrate``) but never create the first owner, nor an
empty database, on their own. Output rules are in ``cli/common.py``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from opstage import __version__
from opstage.cli.common import (
    confirm,
    describe,
    emit,
    error_code,
    json_message,
    json_option,
    load_settings,
    note,
    refuse_without_first_owner,
    require_database,
    sqlite_file,
    wants_json,
)


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            # Usage errors and refused confirmations: click reports them (exit 2); a script
            # that asked for JSON reads the failure on stdout too (docs/operations.md).
            if wants_json():
                error = {"code": "USAGE", "message": exc.format_message()}
                click.echo(json.dumps({"error": error}))
            raise
        except (click.exceptions.Exit, click.Abort):
            raise  # --help and ^C
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            if wants_json():
                error = {"code": error_code(exc), "message": json_message(exc)}
                click.echo(json.dumps({"error": error}))
            click.echo(f"opstage: error: {describe(exc)}", err=True)
            sys.exit(1)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@json_option
@click.version_option(__version__, "--version", prog_name="opstage", message="%(version)s")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Opstage: the control plane for Capsule Services.

    Settings come from OPSTAGE_* environment variables (and DATABASE_URL); see
    `opstage config show` and docs/configuration.md.
    """
    ctx.ensure_object(dict)["debug"] = debug


@cli.command()
@json_option
def version() -> None:
    """Print the version."""
    emit({"version": __version__}, __version__)


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
@json_option
def serve(host: str | None, port: int | None, dev: bool | None, migrate: bool) -> None:
    """Run the API and background services in one process.

    With --json the log is JSON lines and the start line is a JSON object on standard output.
    """
    import uvicorn

    from opstage import logs
    from opstage.api.http_protocol import DeadlineHttpProtocol
    from opstage.cli.open_files import WARN_BELOW_AGENTS, agents_within, raise_open_files_limit
    from opstage.server import create_server_app
    from opstage.store.engine import engine_kind
    from opstage.store.migrate import upgrade

    settings = load_settings(host=host, port=port, dev_mode=dev)
    if wants_json():
        settings = settings.model_copy(update={"log_format": "json"})
    # Everything that can refuse the settings runs before the database is touched: a server
    # that will not start must not have migrated (or created) a database first.
    kind = engine_kind(settings.database_url)
    settings = settings.resolve_secrets()
    refuse_without_first_owner(settings)
    logs.configure(settings.log_level, settings.log_format)
    url = f"http://{settings.host}:{settings.port}"
    if settings.secure_cookies:
        logging.getLogger("opstage").warning(
            "%s is plain HTTP but session cookies are Secure (OPSTAGE_COOKIE_SECURE unset or "
            "true, dev mode off): browsers and clients that honour Secure will not send the "
            "cookie back over plain HTTP, so every call after login answers 401. Serve it "
            "behind an HTTPS proxy, or set OPSTAGE_COOKIE_SECURE=false on a trusted network.",
            url,
        )
    open_files = raise_open_files_limit()
    if agents_within(open_files) < WARN_BELOW_AGENTS:
        logging.getLogger("opstage").warning(
            "the open-file limit is %d, so this node can hold at most ~%d connected agents "
            "(each parks a long-poll on a socket of its own). Raise the hard limit: "
            "`ulimit -Hn 65536` before starting, or LimitNOFILE=65536 in a systemd unit.",
            open_files,
            agents_within(open_files),
        )
    if migrate:
        upgrade(settings.database_url)
    app = create_server_app(settings)
    emit(
        {
            "version": __version__,
            "url": url,
            "database": kind,
            "devMode": settings.dev_mode,
            "openFilesLimit": open_files,
        },
        None,
    )
    if not wants_json():
        note(
            f"Opstage {__version__} on {url}  "
            f"(database: {kind}{', dev mode' if settings.dev_mode else ''})"
        )
    sys.stdout.flush()
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
@json_option
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Database schema migrations (without a subcommand: upgrade to the latest)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(migrate_up, revision="head")


@migrate.command("up")
@click.argument("revision", default="head")
@json_option
def migrate_up(revision: str) -> None:
    """Upgrade to REVISION (default: head)."""
    from opstage.store import migrate as m

    settings = load_settings()
    before = _current(settings.database_url)
    m.upgrade(settings.database_url, revision)
    now = m.current(settings.database_url)
    emit({"from": before, "revision": now}, f"database at {now}")


@migrate.command("down")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask; needed when not on a terminal.")
@json_option
def migrate_down(revision: str, yes: bool) -> None:
    """Downgrade to REVISION, dropping what newer revisions added.

    REVISION is required: a revision id (`opstage migrate current` shows the present one), or
    `base` for an empty schema (everything dropped). The tables and columns that will be
    dropped, with their row counts, are listed first; then it asks (or takes --yes).
    """
    from opstage.store import migrate as m

    settings = load_settings()
    require_database(settings)
    plan = m.downgrade_plan(settings.database_url, revision)
    for step in plan:
        note(f"undo {step.revision} ({step.message}):")
        for table, rows in step.tables:
            note(f"  drop table {table}" + ("" if rows is None else f" ({rows} rows)"))
        for column in step.columns:
            note(f"  drop column {column}")
    rows = sum(n or 0 for step in plan for _, n in step.tables)
    confirm(f"Downgrade to {revision}, deleting {rows} rows?", yes)
    m.downgrade(settings.database_url, revision)
    now = m.current(settings.database_url)
    emit(
        {
            "revision": now,
            "undone": [
                {
                    "revision": s.revision,
                    "message": s.message,
                    "droppedTables": [{"name": t, "rows": n} for t, n in s.tables],
                    "droppedColumns": s.columns,
                }
                for s in plan
            ],
        },
        f"database at {now or 'base'}",
    )


def _current(url: str) -> str | None:
    from opstage.store import migrate as m

    path = sqlite_file(load_settings())
    if path is not None and not path.exists():
        return None  # no database file yet; opening one would create it
    return m.current(url)


@migrate.command("current")
@json_option
def migrate_current() -> None:
    """Show the database's revision."""
    revision = _current(load_settings().database_url)
    emit({"revision": revision}, revision or "base (empty)")


def _register() -> None:
    from opstage.cli import audit, backup, config, demo, tokens, users

    for module in (audit, backup, config, demo, tokens, users):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="opstage")


if __name__ == "__main__":
    main()
