"""What every ``opstage`` command shares: settings, errors, ``--json`` output, progress lines.

Output rules: a command's result goes to standard output — text for people, or one JSON document
with ``--json`` (a list command prints one JSON array). Progress and notes go to standard error.
A failure is one line on standard error (``opstage: error: …``), with ``--json`` also
``{"error": {...}}`` on standard output, and exit status 1 (2 for a usage error).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import SecretStr, ValidationError

from opstage.settings import MIN_SECRET_LENGTH, Settings, SettingsError

if TYPE_CHECKING:  # the app is imported lazily, so `opstage --help` stays fast
    from opstage.app.context import Actor, AppContext

F = TypeVar("F", bound=Callable[..., Any])


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


def variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error is about (``port`` → ``OPSTAGE_PORT``)."""
    name = str(loc[0]) if loc else ""
    info = Settings.model_fields.get(name)
    if info is None:
        return ".".join(map(str, loc)) or "settings"
    from opstage.cli.config_docs import env_names

    return env_names(name, info)[0]


def error_code(exc: BaseException) -> str:
    """A stable code in the contract's style (``DatabaseInUse`` → ``DATABASE_IN_USE``)."""
    from opstage.domain.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.code
    if isinstance(exc, SettingsError):
        return "SETTINGS"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(exc).__name__).upper()


def json_message(exc: BaseException) -> str:
    """``describe`` without the ``(CODE)`` suffix: in JSON the code has its own field."""
    from opstage.domain.errors import DomainError, ValidationFailed

    if isinstance(exc, DomainError) and not isinstance(exc, ValidationFailed):
        return describe(exc).removesuffix(f" ({exc.code})")
    return describe(exc)


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
    elif isinstance(exc, SettingsError | ValueError) or type(exc).__name__ in (
        "BackupError",
        "DatabaseInUse",
        "DemoError",
    ):
        text = str(exc)
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (run `opstage --debug …` for details)"
    return mask_token_values(text.strip()) if "opstage_" in text else text.strip()


# ------------------------------------------------------------------------------------ output
def _root_obj() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    obj: dict[str, Any] = root.obj
    return obj


def wants_json() -> bool:
    return bool(_root_obj().get("json"))


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        root = ctx.find_root()
        if root.obj is None:
            root.obj = {}
        root.obj["json"] = True
    return value


def json_option(f: F) -> F:
    """``--json`` on a command: its result as JSON on standard output (errors too)."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help='Print the result as JSON (errors as {"error": …}) for scripts.',
    )(f)


def emit(data: Any, text: str | list[str] | None = None) -> None:
    """The command's result: ``data`` as JSON with ``--json``, else ``text`` (if any)."""
    if wants_json():
        click.echo(json.dumps(data, default=str))
        return
    if text is None:
        return
    for line in [text] if isinstance(text, str) else text:
        click.echo(line)


def note(text: str) -> None:
    """A remark for the person at the terminal (standard error, never the result)."""
    click.echo(text, err=True)


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    cells = [header] + [tuple("" if c is None else str(c) for c in row) for row in rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(header))]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


class Progress:
    """Progress of a long operation as lines on standard error: ``<what>: <step>``.

    A step that repeats (a batch, a percentage) is printed the first time and then at most every
    ``every`` seconds; ``done`` says the total. A fast run says what it did, a slow one keeps
    talking.
    """

    def __init__(self, what: str, every: float = 1.0) -> None:
        self.what = what
        self.every = every
        self.started = time.monotonic()
        self._last = 0.0
        self._ticked = False

    def step(self, text: str) -> None:
        click.echo(f"{self.what}: {text}", err=True)
        self._last = time.monotonic()

    def tick(self, text: str) -> None:
        """A repeating step: the first always, then at most one every ``every`` seconds."""
        if not self._ticked or time.monotonic() - self._last >= self.every:
            self._ticked = True
            self.step(text)

    def done(self, text: str) -> None:
        self.step(f"{text} in {time.monotonic() - self.started:.1f} s")


def size_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# ------------------------------------------------------------------------- one-off app context
def cli_actor() -> Actor:
    from opstage.app.context import Actor

    try:
        who = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        who = "unknown"
    return Actor("SYSTEM", f"cli:{who}"[:64])


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file of this configuration (None on PostgreSQL or in memory)."""
    from opstage.store.engine import sqlite_path

    path = sqlite_path(settings.database_url)
    return None if path is None or path == ":memory:" else Path(path)


def require_database(settings: Settings) -> None:
    """Refuse, naming the path, when there is no SQLite database where the settings point.

    Opening a missing file would create an empty database; a one-off command must never leave
    one behind (it would then be backed up, or reported as "schema at nothing").
    """
    path = sqlite_file(settings)
    if path is not None and not path.exists():
        raise SettingsError(
            f"no database at {path.resolve()} (data dir {settings.data_dir.resolve()}): set "
            "OPSTAGE_DATA_DIR or DATABASE_URL to where your database is, or run `opstage "
            "migrate` to create a new one there"
        )


def refuse_without_first_owner(settings: Settings) -> None:
    """``serve``'s start-up would fail creating the first owner: say so before migrating.

    Outside dev mode the first owner comes from ``OPSTAGE_ADMIN_USERNAME``/``_PASSWORD``; with
    neither and no user, the server used to create and migrate the SQLite file and then fail in
    its start-up with a traceback. SQLite is read with the standard library, read-only;
    PostgreSQL with one short read-only connection (no schema counts as no user). When the
    database cannot be read here, the start-up's own check decides.
    """
    if settings.dev_mode or (settings.admin_username and settings.admin_password):
        return
    path = sqlite_file(settings)
    users: int | None = 0
    if path is None:
        if settings.database_url.startswith("sqlite"):
            return  # in memory: created empty by the start-up itself
        users = _postgres_users(settings.database_url)
        if users is None:
            return
    elif path.exists():
        import sqlite3

        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                return  # unreadable here: the start-up's own check decides
        finally:
            conn.close()
    if users == 0:
        raise SettingsError(
            "No admin user exists. Set OPSTAGE_ADMIN_USERNAME and OPSTAGE_ADMIN_PASSWORD for the "
            "first start (or use OPSTAGE_DEV_MODE=true to have a password generated)."
        )


def _postgres_users(url: str) -> int | None:
    """Users in a PostgreSQL database: 0 without Opstage's schema, None when unreadable."""
    import asyncio

    from sqlalchemy import text

    from opstage.store.engine import create_engines

    async def count() -> int | None:
        engines = create_engines(url)
        try:
            async with engines.reader.connect() as conn:
                if (await conn.execute(text("SELECT to_regclass('users')"))).scalar() is None:
                    return 0
                return int((await conn.execute(text("SELECT count(*) FROM users"))).scalar_one())
        except Exception:  # unreachable, refused, …: the start-up reports it
            return None
        finally:
            await engines.dispose()

    return asyncio.run(count())


@contextlib.asynccontextmanager
async def app_context() -> AsyncIterator[AppContext]:
    """The application context for one command: no owner bootstrap, no background services."""
    from opstage.runtime import Runtime

    settings = load_settings()
    require_database(settings)
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


def read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: no password on standard input")
        return password
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)


def confirm(question: str, yes: bool) -> None:
    """Go on only with ``--yes``, or a "y" typed at a terminal; refuse in a script."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(
            f"{question} — pass --yes to confirm (standard input is no terminal)"
        )
    if not click.confirm(question, default=False, err=True):
        raise click.Abort()
