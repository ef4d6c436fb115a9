"""Secret redaction, applied before anything is stored, logged, audited or returned.

Two nets: by key name (the reference's pattern, widened), and by value shape (any raw
``opstage_reg_``/``opstage_agent_`` token, wherever it appears, is masked whole).

Under a secret-looking key, what is redacted depends on what the value is (issue 15): a
string, object or array is; a boolean or null never is (a flag, an absence); a number only
when the key names one secret (``token``, ``password``, ``apiKey``: a one-time code, a PIN) and
not when it counts or measures them (``expiredRegistrationTokens``, ``tokenTtlSeconds``); and a
string that is an Opstage id (``tok_<ULID>``) is a reference, not a secret.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from opstage.domain.ids import ID_PREFIXES

REDACTED = "[REDACTED]"

SECRET_KEY_PATTERN = re.compile(
    r"token|secret|passw(or)?d|passphrase|cookie|authorization|credential|private[-_]?key|"
    r"api[-_]?key\b|access[-_]?key|client[-_]?secret|generatedKey|rawKey|plainTextKey|dsn\b|"
    r"connection[-_]?string",
    re.IGNORECASE,
)
TOKEN_VALUE_PATTERN = re.compile(r"opstage_(reg|agent|agt)_[A-Za-z0-9_\-]+")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]+):[^@\s]*@")


# A number is a secret only under a key that ends by naming one secret (``token``, ``apiKey``,
# ``password``), not one that counts or measures them (``revokedTokens``, ``tokenTtl``).
_SINGLE_SECRET_KEY = re.compile(
    r"(token|secret|passw(or)?d|passphrase|passcode|pin|key|credential)$", re.IGNORECASE
)
_OPSTAGE_ID = re.compile(r"^(" + "|".join(sorted(ID_PREFIXES)) + r")_[0-9A-HJKMNP-TV-Z]{26}$")


@lru_cache(maxsize=8192)  # keys repeat (payload schemas); bounded, as callers choose them
def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key))


def is_secret_value(key: str, value: Any) -> bool:
    """Whether ``value``, found under ``key``, is to be hidden (see the module's rule)."""
    if value is None or value == "" or type(value) is bool or not is_secret_key(key):
        return False
    if type(value) is str:
        return not _OPSTAGE_ID.match(value)
    if type(value) in (int, float):
        return bool(_SINGLE_SECRET_KEY.search(key))
    return True


def mask_strings(value: Any) -> Any:
    """A copy with token-shaped strings masked everywhere, keys untouched (for free text and
    documents whose secret-named keys are not secrets, such as an action's inputSchema)."""
    if isinstance(value, str):
        return mask_token_values(value) if "opstage_" in value else value
    if isinstance(value, dict):
        return {k: mask_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_strings(v) for v in value]
    return value


def mask_token_values(text: str) -> str:
    return TOKEN_VALUE_PATTERN.sub(lambda m: f"opstage_{m.group(1)}_{REDACTED}", text)


def redact(value: Any) -> Any:
    """A redacted deep copy: secret-named keys lose their values; token-shaped strings masked."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and is_secret_value(k, v):
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
