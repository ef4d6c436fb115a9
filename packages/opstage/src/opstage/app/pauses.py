"""Where this process's event loop stopped: the cyclic collector's passes and the loop's lag.

Every agent call waits behind whatever holds the one event loop. With thousands of long-polls
parked, that is mostly CPython's cyclic garbage collector: a full pass scans every object the
parked requests hold (~90 each) and stops the loop for all of it (ADR 0019). These figures say
how long and how often, so a tail is explained by a measure, not a guess: the runtime
diagnostics and ``/metrics`` report them, and ``bench/fleet.py`` prints them per step.

Filled in by ``workers/collector.py``; read by ``app/observability.py``.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Seconds. A heartbeat's own work is ~1 ms; anything past 0.1 s shows in the fleet's p99.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GENERATIONS = 3


@dataclass
class PauseStats:
    # Per generation (0, 1, 2): passes, seconds spent, the longest pass.
    gc_passes: list[int] = field(default_factory=lambda: [0] * GENERATIONS)
    gc_seconds: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)
    gc_max_seconds: list[float] = field(default_factory=lambda: [0.0] * GENERATIONS)
    # Full passes this process asked for on its schedule (the rest were CPython's own).
    scheduled_full_passes: int = 0
    # The loop's lag: how late a timer fired, sampled every ``sample_seconds``.
    lag_counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    lag_samples: int = 0
    lag_seconds: float = 0.0
    lag_max_seconds: float = 0.0
    sample_seconds: float = 0.0  # 0: the sampler is not running (one-off CLI runtimes)
    # The collector's policy as applied: thresholds and the full-pass interval (0: CPython's).
    thresholds: tuple[int, int, int] = (0, 0, 0)
    full_interval_seconds: float = 0.0

    def gc_pass(self, generation: int, seconds: float) -> None:
        self.gc_passes[generation] += 1
        self.gc_seconds[generation] += seconds
        if seconds > self.gc_max_seconds[generation]:
            self.gc_max_seconds[generation] = seconds

    def lag(self, seconds: float) -> None:
        self.lag_counts[bisect_left(LAG_BUCKETS, seconds)] += 1
        self.lag_samples += 1
        self.lag_seconds += seconds
        if seconds > self.lag_max_seconds:
            self.lag_max_seconds = seconds

    def view(self) -> dict[str, object]:
        """The runtime diagnostics' ``pauses`` (milliseconds, as people read them)."""
        return {
            "gc": [
                {
                    "generation": g,
                    "passes": self.gc_passes[g],
                    "totalMs": round(self.gc_seconds[g] * 1000, 1),
                    "maxMs": round(self.gc_max_seconds[g] * 1000, 1),
                }
                for g in range(GENERATIONS)
            ],
            "scheduledFullPasses": self.scheduled_full_passes,
            "thresholds": list(self.thresholds),
            "fullIntervalSeconds": self.full_interval_seconds,
            "loopLag": {
                "sampleSeconds": self.sample_seconds,
                "samples": self.lag_samples,
                "maxMs": round(self.lag_max_seconds * 1000, 1),
                "over100Ms": sum(self.lag_counts[LAG_BUCKETS.index(0.1) + 1 :]),
            },
        }
