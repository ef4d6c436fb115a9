"""Secret redaction, applied before anything is stored, logged, audited or returned.

Two nets: by key name (the reference's pattern, widened), and by value shape (any raw
``opstage_reg_``/``opstage_agent_`` token, wherever it appears, is masked whole).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"

SECRET_KEY_PATTERN = re.compile(
    r"token|secret|passw(or)?d|passphrase|cookie|authorization|credential|private[-_]?key|"
    r"api[-_]?key\b|access[-_]?key|client[-_]?secret|generatedKey|rawKey|plainTextKey|dsn\b|"
    r"connection[-_]?string",
    re.IGNORECASE,
)
# Keys that match the pattern but only ever carry counts or flags.
_SAFE_KEYS = frozenset({"revokedTokens"})
TOKEN_VALUE_PATTERN = re.compile(r"opstage_(reg|agent|agt)_[A-Za-z0-9_\-]+")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]+):[^@\s]*@")


@lru_cache(maxsize=8192)  # keys repeat (payload schemas); bounded, as callers choose them
def is_secret_key(key: str) -> bool:
    return key not in _SAFE_KEYS and bool(SECRET_KEY_PATTERN.search(key))


def mask_token_values(text: str) -> str:
    return TOKEN_VALUE_PATTERN.sub(lambda m: f"opstage_{m.group(1)}_{REDACTED}", text)


def redact(value: Any) -> Any:
    """A redacted deep copy: secret-named keys lose their values; token-shaped strings masked."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and is_secret_key(k) and v not in (None, ""):
                out[k] = REDACTED
            elif type(v) in _PLAIN:  # most values: no call, no copy (the ingest hot path)
                out[k] = v
            elif type(v) is str:
                out[k] = mask_token_values(v) if "opstage_" in v else v
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask_token_values(value) if "opstage_" in value else value
    return value


# Values redaction leaves as they are: numbers, booleans, None.
_PLAIN = frozenset({int, float, bool, type(None)})


def mask_url(url: str) -> str:
    return _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:***@", url)
