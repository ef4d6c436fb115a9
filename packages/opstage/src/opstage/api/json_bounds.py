"""Integers a request may carry: those both databases and the JSON codec store as numbers.

Free-form JSON (manifests, health details, payloads, route metadata, command results) is stored
through orjson, which writes integers of 64 bits at most; a larger one used to fail the write
itself with a 500 (in a heartbeat: the whole group commit it rode in). A request body holding an
integer outside the signed 64-bit range (-2**63 … 2**63-1, the range of SQLite's INTEGER and
PostgreSQL's ``bigint``) is refused at the edge with ``422 VALIDATION_FAILED``, each such number
named by its path (docs/compatibility.md).

Such an integer has at least 19 digits, so a body without a run of 19 digits (nearly every
body) costs one scan of its bytes and nothing else.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from opstage.domain.errors import ValidationFailed

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{19}")
MESSAGE = "integer outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"


def out_of_range(value: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """``{path, message}`` for every integer of ``value`` outside the signed 64-bit range."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return []
        return [{"path": ".".join(path), "message": MESSAGE}]
    issues: list[dict[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            issues += out_of_range(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            issues += out_of_range(item, (*path, str(i)))
    return issues


def check_integers(raw: bytes, body: BaseModel) -> None:
    """Refuse ``body`` (parsed from ``raw``) if it holds an integer beyond 64 bits."""
    if _LONG_DIGIT_RUN.search(raw) is None:
        return
    issues = out_of_range(body.model_dump(by_alias=True))
    if issues:
        raise ValidationFailed("Request body validation failed.", issues)
