"""The ``opstage`` command. Errors are one clear line and a non-zero exit (``--debug`` for more)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click
from pydantic import ValidationError

from opstage import __version__
from opstage.settings import Settings, SettingsError


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SettingsError, OSError, RuntimeError) as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"opstage: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=Cli)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Opstage: the control plane for Capsule Services."""
    ctx.obj = {"debug": debug}


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@cli.command()
@click.option("--host", help="Listen address (OPSTAGE_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (OPSTAGE_PORT, default 8080).")
@click.option("--dev", is_flag=True, default=None, help="Development mode (OPSTAGE_DEV_MODE).")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Apply database migrations before starting.")
def serve(host: str | None, port: int | None, dev: bool | None, migrate: bool) -> None:
    """Run the API and background services in one process."""
    import uvicorn

    from opstage import logs
    from opstage.api.app import create_app
    from opstage.store.engine import engine_kind
    from opstage.store.migrate import upgrade

    settings = _settings(host=host, port=port, dev_mode=dev)
    logs.configure(settings.log_level, settings.log_format)
    if migrate:
        upgrade(settings.database_url)
    app = create_app(settings)
    click.echo(f"Opstage {__version__} on http://{settings.host}:{settings.port}  "
               f"(database: {engine_kind(settings.database_url)}"
               f"{', dev mode' if settings.dev_mode else ''})", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                access_log=False, lifespan="on", server_header=False,
                timeout_graceful_shutdown=5)


@cli.group()
def migrate() -> None:
    """Database schema migrations."""


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

    click.echo(m.current(_settings().database_url) or "base (empty)")


@cli.group()
def config() -> None:
    """Inspect configuration."""


@config.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    click.echo(json.dumps(_settings().masked(), indent=2, default=str))


@cli.group()
def token() -> None:
    """Registration tokens."""


@token.command("create")
@click.option("--name", default="CLI registration token", show_default=True)
@click.option("--expires-in", type=int, help="Seconds until the token expires (>= 60).")
@click.option("--agent-code", help="Scope the token to one agent code.")
def token_create(name: str, expires_in: int | None, agent_code: str | None) -> None:
    """Create a registration token and print it once."""
    from opstage.app.context import Actor
    from opstage.app.tokens import create_token
    from opstage.runtime import Runtime

    if expires_in is not None and expires_in < 60:
        raise SettingsError("--expires-in must be at least 60 seconds")

    async def go() -> str:
        # The CLI issues no sessions, so it does not need the server's session secret.
        settings = _settings()
        if settings.session_secret is None:
            settings = settings.model_copy(update={"dev_mode": True})
        runtime = await Runtime.start(settings.resolve_secrets(), background=False)
        try:
            _, raw = await create_token(runtime.ctx, Actor("SYSTEM", "cli"), name=name,
                                        expires_in_seconds=expires_in, agent_code=agent_code)
            return raw
        finally:
            await runtime.stop()

    click.echo(asyncio.run(go()))


def main() -> None:
    cli(prog_name="opstage")


if __name__ == "__main__":
    main()
