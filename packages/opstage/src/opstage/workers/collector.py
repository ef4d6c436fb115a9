"""The cyclic garbage collector's policy for a server with a parked fleet, and its measure.

CPython starts a full collection whenever the objects promoted to the oldest generation since
the last one reach a quarter of it. A parked long-poll holds ~90 tracked objects for up to 25 s
and is replaced when it answers, so with N agents parked that happens every few seconds, and
each full pass scans every parked request: 0.25-0.37 s at 5,000 agents and over 1 s at 10,000
(measured, ADR 0019), with the loop stopped and every agent call waiting. Almost nothing it
finds is garbage (tens of objects a pass): requests free their objects by reference counting.

So, with ``OPSTAGE_GC_FULL_INTERVAL_SECONDS`` > 0 (the default), CPython never starts a full
pass on its own; this service runs one every interval instead, so the pause comes at a known
rate and the cyclic garbage that only a full pass frees is bounded by one interval's worth. The
young generations keep CPython's thresholds: they stay small, so their passes stay short.
``0`` leaves CPython's policy as it is.

It also measures every pass's duration and the loop's lag into ``ctx.pauses``
(``app/pauses.py``), whichever policy is on. Stopping restores the thresholds and removes the
callback (tests run several servers in one process).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

from opstage.app.context import AppContext
from opstage.app.pauses import PauseStats

LAG_SAMPLE_SECONDS = 0.1
# count[2] never reaches this on its own: a full pass starts only on this service's schedule.
NO_AUTOMATIC_FULL_PASS = 1 << 30


class CollectorPolicy:
    """One server's hold on the process-wide collector policy.

    The thresholds belong to the process, and tests run several servers in one: the first
    server on a schedule saves CPython's thresholds and the last one to stop puts them back; a
    server with interval 0 only measures.
    """

    _lock = threading.Lock()
    _holders = 0
    _saved: tuple[int, int, int] = (0, 0, 0)

    def __init__(self, stats: PauseStats, full_interval_seconds: float) -> None:
        self.stats = stats
        self.full_interval = full_interval_seconds
        self._started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.stats.gc_pass(info["generation"], time.perf_counter() - self._started)
            self._started = 0.0

    def install(self) -> None:
        cls = type(self)
        if self.full_interval > 0:  # only a holder of the schedule changes the thresholds
            with cls._lock:
                if cls._holders == 0:
                    cls._saved = gc.get_threshold()
                cls._holders += 1
                young, middle, _ = cls._saved
                gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_PASS)
        self.stats.thresholds = gc.get_threshold()
        self.stats.full_interval_seconds = self.full_interval
        gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self.full_interval > 0:
            cls = type(self)
            with cls._lock:
                cls._holders -= 1
                if cls._holders == 0:
                    gc.set_threshold(*cls._saved)

    def full_pass(self) -> None:
        self.stats.scheduled_full_passes += 1
        gc.collect(2)


async def _sample_lag(stats: PauseStats) -> None:
    stats.sample_seconds = LAG_SAMPLE_SECONDS
    loop = asyncio.get_running_loop()
    due = loop.time() + LAG_SAMPLE_SECONDS
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        stats.lag(max(0.0, now - due))
        due = now + LAG_SAMPLE_SECONDS


async def run_collector(ctx: AppContext) -> None:
    """The background service (``opstage.server``): policy, scheduled full passes, lag."""
    policy = CollectorPolicy(ctx.pauses, ctx.settings.gc_full_interval_seconds)
    policy.install()
    sampler = asyncio.create_task(_sample_lag(ctx.pauses), name="loop-lag")
    try:
        if policy.full_interval <= 0:
            await asyncio.Event().wait()  # measure only, until cancelled
        while True:
            await asyncio.sleep(policy.full_interval)
            policy.full_pass()
    finally:
        sampler.cancel()
        policy.uninstall()
