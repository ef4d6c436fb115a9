"""Each stored record's keys are its table's columns, and a nullable column's type admits None
(``domain/records.py`` against ``store/tables.py``, ADR 0011): mypy trusts the records, so a
column added, renamed or made nullable without its record fails here."""

from __future__ import annotations

import types
import typing
from typing import Any, get_type_hints

import pytest
from opstage.domain import records as r
from opstage.store import tables as t
from sqlalchemy import Table

ROWS: list[tuple[type, Table]] = [
    (r.UserRow, t.users),
    (r.SessionRow, t.sessions),
    (r.RegistrationTokenRow, t.registration_tokens),
    (r.AgentRow, t.agents),
    (r.AgentTokenRow, t.agent_tokens),
    (r.ServiceRow, t.capsule_services),
    (r.ConfigItemRow, t.config_items),
    (r.ActionRow, t.action_definitions),
    (r.CommandRow, t.commands),
    (r.CommandResultRow, t.command_results),
    (r.AuditRow, t.audit_events),
    (r.BusRouteRow, t.bus_routes),
    (r.BusEventRow, t.bus_events),
    (r.EventLogRow, t.domain_event_log),
]
CHANGES: list[tuple[type, Table]] = [
    (r.UserChanges, t.users),
    (r.SessionChanges, t.sessions),
    (r.RegistrationTokenChanges, t.registration_tokens),
    (r.AgentChanges, t.agents),
    (r.ServiceChanges, t.capsule_services),
    (r.CommandChanges, t.commands),
    (r.BusRouteChanges, t.bus_routes),
]


def _admits_none(hint: Any) -> bool:
    if hint is Any:
        return True
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
    return type(None) in args


@pytest.mark.parametrize(("record", "table"), ROWS, ids=[t.name for _, t in ROWS])
def test_a_row_record_is_its_table(record: type, table: Table) -> None:
    hints = get_type_hints(record)
    assert set(hints) == {c.name for c in table.columns}
    for column in table.columns:
        if column.nullable and not column.primary_key:
            assert _admits_none(hints[column.name]), f"{table.name}.{column.name} may be NULL"
        elif not column.nullable:
            assert not _admits_none(hints[column.name]) or hints[column.name] is Any, (
                f"{table.name}.{column.name} is never NULL"
            )


@pytest.mark.parametrize(("record", "table"), CHANGES, ids=[t.name for _, t in CHANGES])
def test_changes_name_only_columns(record: type, table: Table) -> None:
    assert set(get_type_hints(record)) <= {c.name for c in table.columns}
