"""``opstage config show|docs``: the effective settings, and the generated reference page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from opstage.cli.common import emit, json_option, load_settings, note, table, wants_json
from opstage.settings import Settings, SettingsError


@click.group()
def config() -> None:
    """Inspect configuration."""


def effective(settings: Settings, environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each setting by its environment variable: value (secrets masked) and where it came from.

    ``source`` is ``env`` (the variable is set), ``file`` (the dev-mode session secret kept in
    ``<data_dir>/.session-secret``) or ``default``. Environment names are matched without regard
    to case, as the settings themselves read them.
    """
    from opstage.cli.config_docs import env_names
    from opstage.domain.redaction import mask_url

    present = {k.upper(): k for k in environ}
    masked = settings.masked()
    out: dict[str, dict[str, Any]] = {}
    for name, info in Settings.model_fields.items():
        names = env_names(name, info)
        set_as = next((n for n in names if n.upper() in present), None)
        entry: dict[str, Any] = {"value": masked[name], "source": "env" if set_as else "default"}
        if name == "database_url" and not set_as:
            entry["value"] = mask_url(settings.database_url)  # derived from OPSTAGE_DATA_DIR
        if name == "session_secret" and not set_as and settings.dev_mode:
            kept = settings.data_dir / ".session-secret"
            if kept.exists():
                entry.update(value="********", source="file", file=str(kept))
        out[set_as or names[0]] = entry
    return out


@config.command("show")
@json_option
def config_show() -> None:
    """Print every setting: its environment variable, effective value and source.

    Secrets are masked (********, and the password in DATABASE_URL). SOURCE is `env`, `file`
    (the dev-mode session secret under the data dir) or `default`.
    """
    shown = effective(load_settings(), dict(os.environ))
    rows = [
        (
            variable,
            "" if e["value"] is None else _text(e["value"]),
            e["source"] + (f" ({e['file']})" if "file" in e else ""),
        )
        for variable, e in shown.items()
    ]
    emit(shown, table(("VARIABLE", "VALUE", "SOURCE"), rows))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, SecretStr):
        return "********"
    return str(value)


@config.command("docs")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output (docs/configuration.md).",
)
@click.option("--check", is_flag=True, help="Only compare with --output; exit 1 if it differs.")
@json_option
def config_docs(output: Path | None, check: bool) -> None:
    """Generate the configuration reference (Markdown) from the settings tree."""
    from opstage.cli.config_docs import render

    text = render()
    if output is None:
        if check:
            raise click.UsageError("--check needs --output")
        emit({"markdown": text}, None)
        if not wants_json():
            click.echo(text, nl=False)
        return
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            raise SettingsError(f"{output} is out of date; run `opstage config docs -o {output}`")
        emit({"path": str(output), "upToDate": True}, None)
        note(f"{output} is up to date")
        return
    output.write_text(text)
    emit({"path": str(output), "written": True}, None)
    note(f"wrote {output}")


COMMANDS = [config]
