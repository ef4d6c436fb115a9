"""UTC time and the wire's timestamp format: ISO-8601 with milliseconds and ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    global _last_iso
    if value is None:
        return None
    last = _last_iso  # one tuple, read and replaced whole: safe from any thread
    if last[0] is value:  # a batch's rows share its clock reading
        return last[1]
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    _last_iso = (value, text)
    return text


_last_iso: tuple[datetime | None, str] = (None, "")


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 instant; a value without a zone is taken as UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def millisecond_bounds(value: datetime) -> tuple[datetime, datetime]:
    """The first and the last microsecond of the millisecond ``value`` falls in.

    The wire shows milliseconds while the database keeps microseconds: a bound the client
    copied from a shown ``createdAt`` must match that row, so filters compare whole
    milliseconds (``from`` at the first microsecond of its millisecond, ``to`` at the last).
    """
    start = value.replace(microsecond=value.microsecond - value.microsecond % 1000)
    return start, start + timedelta(microseconds=999)


def millis_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))
