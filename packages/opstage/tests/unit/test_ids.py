"""ULID spelling: the table-driven encoder agrees with the definition, bit for bit."""

from __future__ import annotations

import os
import re

import pytest
from opstage.domain import ids
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


def _decoded(text: str) -> tuple[int, int]:
    v = 0
    for ch in text:
        v = v * 32 + CROCKFORD.index(ch)
    return v >> 80, v & ((1 << 80) - 1)


def test_ids_of_one_millisecond_count_up_and_survive_a_clock_step_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The spec's monotonic generation: same millisecond, previous random part plus one."""
    now = [1_790_000_000_123_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    monkeypatch.setattr(ids, "_monotonic", ids._Monotonic())
    a, b = ulid(), ulid()
    now[0] -= 5_000_000  # the clock steps back 5 ms
    c = ulid()
    now[0] += 10_000_000
    d = ulid()
    assert a < b < c < d
    (ms_a, r_a), (ms_b, r_b), (ms_c, r_c), (ms_d, _) = map(_decoded, (a, b, c, d))
    assert ms_a == ms_b == ms_c == 1_790_000_000_123 and (r_b, r_c) == (r_a + 1, r_a + 2)
    assert ms_d == 1_790_000_000_128
    for text in (a, b, c, d):
        assert (
            by_definition(int.to_bytes((_decoded(text)[0] << 80) | _decoded(text)[1], 16, "big"))
            == text
        )


def test_monotonic_ids_are_spelled_right_across_every_carry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the last character is re-spelled per id; every carry re-spells the rest."""
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_790_000_000_123_000_000)
    gen = ids._Monotonic()
    gen.next()
    gen._random = (1 << 80) - 70  # 69 ids to the end of the millisecond's random space
    gen._spell()
    seen = []
    for _ in range(100):
        text = gen.next()
        ms, rand = _decoded(text)
        assert (ms, rand) == (gen._ms, gen._random)
        assert text == by_definition(((ms << 80) | rand).to_bytes(16, "big"))
        seen.append(text)
    assert seen == sorted(seen) and len(set(seen)) == 100
    assert gen._ms == 1_790_000_000_124  # ran out of random space: the next millisecond


def test_pooled_random_bytes_come_whole_and_never_repeat_across_a_refill() -> None:
    pool = ids._RandomPool()
    taken = [pool.take(10) for _ in range(1000)]  # 10,000 bytes: two refills of 4 KiB
    assert all(len(chunk) == 10 for chunk in taken)
    assert len(set(taken)) == len(taken)
    assert len(pool.take(5000)) == 5000  # more than a pool's worth at once


def test_a_forked_child_does_not_reuse_its_parents_random_bytes() -> None:
    ids.random_bytes(1)  # the pool holds bytes the child must not see again
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next bytes and leave at once
        os.write(write, ids.random_bytes(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child != ids.random_bytes(16)
