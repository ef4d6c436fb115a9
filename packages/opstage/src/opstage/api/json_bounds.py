"""Values a request body may carry: those both databases and the JSON codec store as sent.

Free-form JSON (manifests, health details, payloads, route metadata, command results) is stored
through orjson, which writes integers of 64 bits at most; a larger one used to fail the write
itself with a 500 (in a heartbeat: the whole group commit it rode in). A request body holding an
integer outside the signed 64-bit range (-2**63 … 2**63-1, the range of SQLite's INTEGER and
PostgreSQL's ``bigint``) is refused at the edge with ``422 VALIDATION_FAILED``, each such number
named by its path (docs/compatibility.md).

The same holds for numbers that are not finite: the parser accepts ``NaN``, ``Infinity`` and
an exponent too large for a float (``1e400``), which the codec would store as ``null``. They are
refused the same way (JSON itself has no such numbers).

And for text holding the NUL character (``\u0000``, in a value or a key): PostgreSQL's text
cannot store it (a 500 there, while SQLite stored it), so both engines refuse it alike.

Such an integer has at least 19 digits, such a float is spelled with ``NaN``, ``Infinity`` or
an exponent of three digits or more, and a NUL is spelled ``\u0000``: a body without any of
these (nearly every body) costs one scan of its bytes and nothing else.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel

from opstage.domain.errors import ValidationFailed

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_SUSPECT = re.compile(rb"[0-9]{19}|NaN|Infinity|[eE][+]?[0-9]{3}|\\u0000")
MESSAGE = "integer outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"
NOT_FINITE = "number is not finite (NaN, Infinity or out of the float range)"
NUL = "text must not contain the NUL character (\\u0000)"


def out_of_range(value: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """``{path, message}`` for every integer of ``value`` outside the signed 64-bit range,
    every float that is not finite and every text (value or key) holding a NUL."""
    if isinstance(value, str):
        return [{"path": ".".join(path), "message": NUL}] if "\x00" in value else []
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return []
        return [{"path": ".".join(path), "message": MESSAGE}]
    if isinstance(value, float):
        return [] if math.isfinite(value) else [{"path": ".".join(path), "message": NOT_FINITE}]
    issues: list[dict[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if "\x00" in name:  # named as JSON spells it, so the path stays printable
                name = name.replace("\x00", "\\u0000")
                issues.append({"path": ".".join((*path, name)), "message": NUL})
            issues += out_of_range(item, (*path, name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            issues += out_of_range(item, (*path, str(i)))
    return issues


def check_storable(raw: bytes, body: BaseModel) -> None:
    """Refuse ``body`` (parsed from ``raw``) if it holds an integer beyond 64 bits, a number
    that is not finite or text with a NUL."""
    if _SUSPECT.search(raw) is None:
        return
    issues = out_of_range(body.model_dump(by_alias=True))
    if issues:
        raise ValidationFailed("Request body validation failed.", issues)
