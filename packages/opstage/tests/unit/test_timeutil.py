"""Instants on the wire: ISO-8601 UTC with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from opstage.domain.timeutil import iso


def test_iso_spells_each_instant_however_often_it_repeats() -> None:
    first = datetime(2026, 12, 3, 14, 0, 0, 123456, tzinfo=UTC)
    later = first + timedelta(milliseconds=1)
    elsewhere = first.astimezone(timezone(timedelta(hours=2)))  # the same instant
    spelled = [iso(v) for v in (first, first, later, first, elsewhere, None, later)]
    assert spelled == [
        "2026-12-03T14:00:00.123Z",
        "2026-12-03T14:00:00.123Z",
        "2026-12-03T14:00:00.124Z",
        "2026-12-03T14:00:00.123Z",
        "2026-12-03T14:00:00.123Z",
        None,
        "2026-12-03T14:00:00.124Z",
    ]
