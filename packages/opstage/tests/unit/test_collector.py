"""The collector policy of a server with a parked fleet (workers/collector.py, ADR 0019)."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

from opstage.app.observability import _pauses_view
from opstage.app.pauses import LAG_BUCKETS, PauseStats
from opstage.workers.collector import NO_AUTOMATIC_FULL_PASS, CollectorPolicy, _sample_lag

# The thresholds are the process's, and a test server elsewhere in this worker may hold the
# policy (CollectorPolicy's holders): these run in an interpreter of their own.
PROBE = """
import gc, json
from opstage.app.pauses import PauseStats
from opstage.workers.collector import NO_AUTOMATIC_FULL_PASS, CollectorPolicy

def promote(n):
    # Long-lived tracked objects, as parked long-polls are: they reach the oldest generation,
    # which is what makes CPython start a full pass on its own.
    kept = []
    for _ in range(n):
        a = []
        a.append(a)
        kept.append(a)
    return kept

before = gc.get_threshold()
stats = PauseStats()
policy = CollectorPolicy(stats, INTERVAL)
policy.install()
during = gc.get_threshold()
kept = promote(300_000)
automatic = stats.gc_passes[2]
del kept
if INTERVAL:
    policy.full_pass()
policy.uninstall()
print(json.dumps({
    "before": before, "during": during, "after": gc.get_threshold(),
    "automatic_full": automatic, "full": stats.gc_passes[2], "young": stats.gc_passes[0],
    "scheduled": stats.scheduled_full_passes, "max_full": stats.gc_max_seconds[2],
    "thresholds": stats.thresholds, "callback_left": policy._on_gc in gc.callbacks,
    "no_automatic": NO_AUTOMATIC_FULL_PASS,
}))
"""


def _probe(interval: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.replace("INTERVAL", repr(interval))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_a_scheduled_policy_stops_automatic_full_passes_and_restores_them() -> None:
    r = _probe(600.0)
    assert r["during"][:2] == r["before"][:2]  # the young generations keep CPython's
    assert r["during"][2] == r["no_automatic"]
    assert r["thresholds"] == r["during"]
    # Well past CPython's own trigger (see the next test): still no full pass...
    assert r["automatic_full"] == 0
    # ...but the scheduled one, measured.
    assert r["full"] == 1 and r["scheduled"] == 1 and r["max_full"] > 0
    assert r["after"] == r["before"]
    assert not r["callback_left"]


def test_interval_zero_keeps_cpythons_policy_and_still_measures() -> None:
    r = _probe(0.0)
    assert r["during"] == r["before"]
    # The same load as above: here CPython runs full passes itself, and each is measured.
    assert r["automatic_full"] >= 1 and r["young"] >= 1
    assert r["scheduled"] == 0


def test_two_holders_restore_the_thresholds_only_when_the_last_one_leaves() -> None:
    before = gc.get_threshold()
    first, second = CollectorPolicy(PauseStats(), 600.0), CollectorPolicy(PauseStats(), 600.0)
    first.install()
    second.install()
    first.uninstall()
    assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL_PASS
    second.uninstall()
    assert gc.get_threshold() == before


def test_lag_lands_in_its_bucket_and_the_view_counts_what_passed_100_ms() -> None:
    stats = PauseStats()
    for seconds in (0.001, 0.04, 0.1, 0.3, 7.0):
        stats.lag(seconds)
    assert stats.lag_counts[0] == 1  # <= 5 ms
    assert stats.lag_counts[LAG_BUCKETS.index(0.05)] == 1
    assert stats.lag_counts[LAG_BUCKETS.index(0.1)] == 1  # le="0.1" holds 0.1 itself
    assert stats.lag_counts[-1] == 1  # +Inf
    view = _pauses_view(stats)
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
    assert _pauses_view(stats)["loopLag"]["over100Ms"] >= 1
