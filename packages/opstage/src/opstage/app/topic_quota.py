"""The per-agent publish quota of the topic bus: one token bucket per agent, in memory, on the
hot path (a dict lookup and a little arithmetic per publish; ADR 0015).

``rate`` tokens per second refill up to ``burst``; a publish takes one. An empty bucket answers
``429 TOPIC_RATE_LIMITED`` with ``Retry-After`` (whole seconds until a token is back). The
bucket is per node: N nodes behind a balancer allow up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opstage.domain.errors import DomainError

MAX_BUCKETS = 100_000  # agents tracked at once; the oldest idle ones are forgotten beyond it


def rate_limited(retry_after: float) -> DomainError:
    return DomainError(
        "This agent's topic publish quota is used up; retry after the Retry-After seconds.",
        code="TOPIC_RATE_LIMITED",
        retry_after_seconds=max(1, math.ceil(retry_after)),
    )


@dataclass
class PublishQuota:
    rate: float  # tokens per second; 0 turns the quota off
    burst: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def take(self, agent_id: str) -> None:
        """Takes one token for ``agent_id`` or raises ``TOPIC_RATE_LIMITED``."""
        if self.rate <= 0:
            return
        now = self.clock()
        tokens, at = self._buckets.get(agent_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[agent_id] = (tokens, now)
            raise rate_limited((1 - tokens) / self.rate)
        if len(self._buckets) >= MAX_BUCKETS and agent_id not in self._buckets:
            self._buckets.pop(next(iter(self._buckets)))
        self._buckets[agent_id] = (tokens - 1, now)
