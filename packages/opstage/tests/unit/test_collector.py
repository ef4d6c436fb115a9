"""The collector policy of a server with a parked fleet (workers/collector.py, ADR 0019)."""

from __future__ import annotations

import asyncio
import gc
import time

from opstage.app.pauses import LAG_BUCKETS, PauseStats
from opstage.workers.collector import NO_AUTOMATIC_FULL_PASS, CollectorPolicy, _sample_lag


def _promote(n: int) -> list[list[object]]:
    """Long-lived tracked objects, as parked long-polls are: they reach the oldest generation,
    which is what makes CPython start a full pass on its own."""
    kept: list[list[object]] = []
    for _ in range(n):
        a: list[object] = []
        a.append(a)
        kept.append(a)
    return kept


def test_a_scheduled_policy_stops_automatic_full_passes_and_restores_them() -> None:
    before = gc.get_threshold()
    stats = PauseStats()
    policy = CollectorPolicy(stats, 600.0)
    policy.install()
    try:
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2]  # the young generations keep CPython's
        assert full == NO_AUTOMATIC_FULL_PASS
        assert stats.thresholds == (young, middle, full)
        passes = stats.gc_passes[2]
        # Well past CPython's own trigger (10 middle passes): still no full pass.
        kept = _promote(300_000)
        assert stats.gc_passes[2] == passes
        del kept
        policy.full_pass()
        assert stats.gc_passes[2] == passes + 1
        assert stats.scheduled_full_passes == 1
        assert stats.gc_max_seconds[2] > 0
    finally:
        policy.uninstall()
    assert gc.get_threshold() == before
    assert policy._on_gc not in gc.callbacks


def test_two_holders_restore_the_thresholds_only_when_the_last_one_leaves() -> None:
    before = gc.get_threshold()
    first, second = CollectorPolicy(PauseStats(), 600.0), CollectorPolicy(PauseStats(), 600.0)
    first.install()
    second.install()
    first.uninstall()
    assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL_PASS
    second.uninstall()
    assert gc.get_threshold() == before


def test_interval_zero_keeps_cpythons_policy_and_still_measures() -> None:
    before = gc.get_threshold()
    stats = PauseStats()
    policy = CollectorPolicy(stats, 0.0)
    policy.install()
    try:
        assert gc.get_threshold() == before
        kept = _promote(300_000)  # the same as above: here CPython runs full passes itself
        assert stats.gc_passes[0] >= 1 and stats.gc_passes[2] >= 1
        del kept
    finally:
        policy.uninstall()


def test_lag_lands_in_its_bucket_and_the_view_counts_what_passed_100_ms() -> None:
    stats = PauseStats()
    for seconds in (0.001, 0.04, 0.1, 0.3, 7.0):
        stats.lag(seconds)
    assert stats.lag_counts[0] == 1  # <= 5 ms
    assert stats.lag_counts[LAG_BUCKETS.index(0.05)] == 1
    assert stats.lag_counts[LAG_BUCKETS.index(0.1)] == 1  # le="0.1" holds 0.1 itself
    assert stats.lag_counts[-1] == 1  # +Inf
    view = stats.view()
    assert view["loopLag"] == {
        "sampleSeconds": 0.0,
        "samples": 5,
        "maxMs": 7000.0,
        "over100Ms": 2,
    }


async def test_a_blocked_loop_shows_as_lag() -> None:
    stats = PauseStats()
    sampler = asyncio.create_task(_sample_lag(stats))
    try:
        await asyncio.sleep(0.15)
        time.sleep(0.3)  # noqa: ASYNC251  # holds the loop, as a long collector pass does
        await asyncio.sleep(0.15)
    finally:
        sampler.cancel()
    assert stats.lag_max_seconds >= 0.2
    assert stats.view()["loopLag"]["over100Ms"] >= 1  # type: ignore[index]
