"""``opstage audit export|prune``: the audit trail's long operations, with progress.

Both run the API's use cases (``app/audit.py``): the export reads the filtered set in keyset
batches and is itself audited ``audit.exported``; the prune deletes in batches of 1 000 rows,
one short write transaction each (a running server keeps writing meanwhile), and is audited
``audit.pruned``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from opstage.api.views import audit_view as view  # --json prints what the API answers
from opstage.cli.common import (
    Progress,
    app_context,
    cli_actor,
    confirm,
    emit,
    json_option,
)


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from opstage.domain.timeutil import parse_iso

    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {value!r}", param_hint=option) from None


@click.group()
def audit() -> None:
    """The audit trail: export it, prune it."""


@audit.command("export")
@click.option(
    "--output",
    "-o",
    required=True,
    help="File to write, one JSON object (an AuditEvent) a line; `-` for standard output.",
)
@click.option("--action", multiple=True, help="Only these actions (repeatable).")
@click.option(
    "--actor-type", type=click.Choice(["USER", "AGENT", "SYSTEM"]), multiple=True, help="Only."
)
@click.option(
    "--result", type=click.Choice(["SUCCESS", "FAILURE", "DENIED"]), multiple=True, help="Only."
)
@click.option("--since", help="From this time (ISO-8601, inclusive).")
@click.option("--until", help="Up to this time (ISO-8601, inclusive).")
@json_option
def audit_export(
    output: str,
    action: tuple[str, ...],
    actor_type: tuple[str, ...],
    result: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> None:
    """Export the audit trail (oldest first) as JSON lines, with progress on standard error."""
    from opstage.app.audit import AuditFilters, export_audit

    filters = AuditFilters(
        actor_types=actor_type,
        results=result,
        actions=action,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
    )
    path = None if output == "-" else Path(output)
    if path is not None and path.exists():
        raise click.UsageError(f"{path} already exists; choose another --output")
    progress = Progress("export")

    async def go(sink: IO[str]) -> int:
        rows = 0
        async with app_context() as ctx:
            async for batch in export_audit(
                ctx, cli_actor(), filters, fmt="jsonl", descending=False
            ):
                sink.writelines(json.dumps(view(r)) + "\n" for r in batch)
                rows += len(batch)
                progress.tick(f"{rows} rows")
        return rows

    if path is None:
        rows = asyncio.run(go(sys.stdout))
    else:
        partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("w", encoding="utf-8") as sink:
                rows = asyncio.run(go(sink))
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    progress.done(f"exported {rows} rows" + (f" to {path}" if path else ""))
    if path is not None:
        emit({"path": str(path), "rows": rows}, str(path))


@audit.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    help="Delete rows older than this many days (default: the retention in force, "
    "OPSTAGE_AUDIT_RETENTION_DAYS or the value an owner set at runtime).",
)
@click.option("--yes", is_flag=True, help="Do not ask; needed when not on a terminal.")
@json_option
def audit_prune(older_than_days: int | None, yes: bool) -> None:
    """Apply audit retention now, in batches of 1 000 rows, with progress."""
    from opstage.app import maintenance_settings
    from opstage.app.audit import purge_audit

    progress = Progress("prune")

    async def go() -> tuple[int, int]:
        async with app_context() as ctx:
            await maintenance_settings.load(ctx)  # the retention in force, overrides included
            days = older_than_days or ctx.settings.audit_retention_days
            if days <= 0:
                return 0, 0
            confirm(f"Delete audit rows older than {days} days?", yes)
            progress.step(f"deleting audit rows older than {days} days")
            deleted = await purge_audit(
                ctx,
                cli_actor(),
                days,
                on_batch=lambda n: progress.tick(f"{n} rows deleted"),
            )
            return days, deleted

    days, deleted = asyncio.run(go())
    if days == 0:
        emit(
            {"retentionDays": 0, "deleted": 0},
            "audit retention is 0 (keep forever): nothing pruned; pass --older-than-days",
        )
        return
    progress.done(f"deleted {deleted} rows")
    emit({"retentionDays": days, "deleted": deleted}, f"deleted {deleted} audit rows")


COMMANDS = [audit]
