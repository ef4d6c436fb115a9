"""Typed identifiers and bearer tokens, in the formats of contracts/enums/id-prefixes.json.

An id is ``<prefix>_<ULID>``: the ULID body is 26 Crockford base32 characters, upper case,
time-ordered so ids sort by creation. A raw token is ``opstage_reg_…`` or
``opstage_agent_…``; only its SHA-256 hex digest is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# The OpenAPI document and the reference server agree on aud_/hlr_/crs_ where
# id-prefixes.json says evt_/hlt_/res_; the wire (OpenAPI patterns) wins.
ID_PREFIXES = frozenset(
    {
        "wks",
        "usr",
        "ses",
        "agt",
        "tok",
        "atk",
        "svc",
        "act",
        "cmd",
        "crs",
        "aud",
        "hlr",
        "cfg",
        "set",
        "brt",
        "bev",
        "top",
        "tsb",  # a durable topic subscription
    }
)


# Two characters per lookup: a ULID is 13 lookups instead of 26 shifts and appends.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = range(120, -1, -10)


class _RandomPool:
    """Bytes from the OS's random source, read 4 KiB at a time.

    ``os.urandom`` releases the GIL for its system call; on the event loop that can hand the
    GIL to a waiting database thread, and the loop then waits up to a switch interval to get
    it back, once per request id and per ULID millisecond. (Measured alone, the change could
    not be told from noise in interleaved runs.) The pool keeps the OS source's
    quality (nothing is derived or stretched) and cuts the calls 512-fold. Raw tokens do not
    come from here (``new_token`` uses ``secrets``). A forked child starts with an empty
    pool, so parent and child never share bytes.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        at = self._at
        if at + n > len(self._buffer):
            self._buffer, at = os.urandom(max(self.SIZE, n)), 0
        self._at = at + n
        return self._buffer[at : at + n]

    def clear(self) -> None:
        self._buffer, self._at = b"", 0


_pool = _RandomPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.clear)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's random source (through a pool; not for secrets)."""
    return _pool.take(n)


def ulid(timestamp_ms: int | None = None) -> str:
    """A 26-character ULID: 48-bit millisecond time then 80 random bits.

    Without ``timestamp_ms``, ids of this process are monotonic, as the ULID spec's
    monotonic generation: within one millisecond (or if the clock steps back) the random part
    of the previous id plus one, so they sort in creation order even within a millisecond;
    and only the first id of each millisecond costs a call to the OS's random source.
    """
    if timestamp_ms is not None:
        return encode_ulid(timestamp_ms.to_bytes(6, "big") + random_bytes(10))
    return _monotonic.next()


class _Monotonic:
    def __init__(self) -> None:
        self._ms = -1
        self._random = 0
        self._stem = ""  # all but the last character of the latest id

    def next(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms > self._ms:
            self._start(ms)
        elif self._random < _RANDOM_MAX:
            self._random += 1
            if not self._random & 31:  # the last character wrapped: re-spell the rest
                self._spell()
        else:  # 2^80 ids in one millisecond: move on to the next one, as time will
            self._start(self._ms + 1)
        return self._stem + _CROCKFORD[self._random & 31]

    def _start(self, ms: int) -> None:
        self._ms, self._random = ms, int.from_bytes(random_bytes(10), "big")
        self._spell()

    def _spell(self) -> None:
        self._stem = encode_ulid(self._ms.to_bytes(6, "big") + self._random.to_bytes(10, "big"))
        self._stem = self._stem[:-1]


_RANDOM_MAX = (1 << 80) - 1
_monotonic = _Monotonic()


def encode_ulid(value: bytes) -> str:
    """Crockford base32 of 16 bytes, most significant first: 130 bits, two leading zeros."""
    v = int.from_bytes(value, "big")
    return "".join([_PAIRS[(v >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    if prefix not in ID_PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{ulid()}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) > len(prefix) + 1


REGISTRATION_TOKEN_PREFIX = "opstage_reg_"
# OpenAPI and every existing agent use ``opstage_agent_``; id-prefixes.json's ``opstage_agt`` is
# not what anything on the wire sends (docs/compatibility.md).
AGENT_TOKEN_PREFIX = "opstage_agent_"


def new_token(prefix: str) -> str:
    """A raw bearer token: prefix + 32 random bytes in base64url (43 chars), shown once."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
