"""ULID spelling: the table-driven encoder agrees with the definition, bit for bit."""

from __future__ import annotations

import os
import re

from opstage.domain.ids import encode_ulid, new_id, ulid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def by_definition(value: bytes) -> str:
    """26 characters of 5 bits each, least significant last (the ULID spec)."""
    v = int.from_bytes(value, "big")
    out = []
    for _ in range(26):
        out.append(CROCKFORD[v & 31])
        v >>= 5
    return "".join(reversed(out))


def test_encoder_matches_the_definition() -> None:
    samples = [b"\0" * 16, b"\xff" * 16, bytes(range(16))] + [os.urandom(16) for _ in range(2000)]
    for value in samples:
        assert encode_ulid(value) == by_definition(value), value.hex()


def test_ulid_carries_its_millisecond_and_sorts_by_time() -> None:
    ms = 1_790_000_000_123
    first, later = ulid(ms), ulid(ms + 1)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", first)
    assert first[:10] == by_definition(ms.to_bytes(6, "big") + bytes(10))[:10]
    assert first < later
    assert new_id("bev").startswith("bev_") and len(new_id("bev")) == 30
