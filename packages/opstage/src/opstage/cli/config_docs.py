"""Render ``docs/configuration.md`` from the settings tree (``opstage config docs``).

Everything in the page comes from ``opstage.settings.Settings``: the variable names (prefix and
aliases), types, constraints, defaults, descriptions, and the sections (the ``# --- name ---``
comments that group the fields in ``settings.py``). ``tests/test_configuration_doc.py``
regenerates the page and compares it with the committed file, so the two cannot drift.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo

from opstage.app.maintenance_settings import ADJUSTABLE
from opstage.settings import Settings

SECTION = re.compile(r"^\s+# --- (?P<title>.+?) ---\s*$")
FIELD = re.compile(r"^\s{4}(?P<name>[a-z_][a-z0-9_]*)\s*:")
RUNTIME = {a.setting: a.wire for a in ADJUSTABLE}

HEADER = """\
# Configuration

<!-- Generated from packages/opstage/src/opstage/settings.py by `opstage config docs`; do not
edit by hand. tests/test_configuration_doc.py fails when this page and the settings disagree.
Regenerate with: .venv/bin/opstage config docs --output docs/configuration.md -->

Opstage reads its settings from environment variables, once, when a command starts; nothing is
read at import time. `opstage config show` prints the effective values with secrets and database
passwords masked. Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.

Secrets fail closed: outside `OPSTAGE_DEV_MODE=true` the server refuses to start without an
`OPSTAGE_SESSION_SECRET` of at least 32 characters.

Settings marked **runtime** can also be changed while the server runs, by an owner, with
`PATCH /api/admin/settings/maintenance` (JSON name in parentheses). A value set that way is
stored in the database and wins over the environment, also after a restart, until it is reset
by sending `null` for it; `GET /api/admin/settings/maintenance` shows each value and its source.
"""


def _sections() -> list[tuple[str, list[str]]]:
    """Field names grouped by the ``# --- title ---`` comments of the class body, in order."""
    fields = Settings.model_fields
    out: list[tuple[str, list[str]]] = [("general", [])]
    for line in inspect.getsource(Settings).splitlines():
        if m := SECTION.match(line):
            out.append((m.group("title"), []))
        elif (m := FIELD.match(line)) and m.group("name") in fields:
            out[-1][1].append(m.group("name"))
    listed = {n for _, names in out for n in names}
    missing = [n for n in fields if n not in listed]
    if missing:
        out.append(("other", missing))
    return [(title, names) for title, names in out if names]


def env_names(name: str, info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper()]


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _type(rest[0]) if len(rest) == 1 else " or ".join(_type(a) for a in rest)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        Path: "path",
        SecretStr: "secret",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(info: FieldInfo) -> str:
    words = []
    for item in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                words.append(f"{sign} {value}")
    return ", ".join(words)


def _default(info: FieldInfo) -> str:
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str) and value == "":
        return "empty"
    if isinstance(value, Path):
        text = value.as_posix()
        return f"`{text if value.is_absolute() or text.startswith('.') else './' + text}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    lines = [HEADER]
    for title, names in _sections():
        lines.append(f"## {title[0].upper()}{title[1:]}\n")
        lines.append("| variable | type | default | description |")
        lines.append("| --- | --- | --- | --- |")
        for name in names:
            info = Settings.model_fields[name]
            variables = " or ".join(f"`{v}`" for v in env_names(name, info))
            kind = _type(info.annotation)
            limits = _constraints(info)
            if limits:
                kind += f" ({limits})"
            description = info.description or ""
            if name in RUNTIME:
                description += f" **runtime** (`{RUNTIME[name]}`)"
            lines.append(
                f"| {variables} | {_cell(kind)} | {_default(info)} | {_cell(description)} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
