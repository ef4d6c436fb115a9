"""The Capsule Bus ingest rate limit: an exact sliding 60 s window per agent, O(1) per event.

Each agent keeps the accept times of at most ``limit`` recent events. A publish *reserves* a
slot synchronously (no await between the check and the append, so concurrent publishes on
this node can never both take the last slot) and gives it back if the event is then refused
or its transaction fails. A window is seeded from the database the first time an agent is
seen after a start, so a restart does not reset anyone's budget.
"""

from __future__ import annotations

import contextlib
from collections import deque

WINDOW_SECONDS = 60.0


class IngestWindows:
    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}

    def seeded(self, agent_id: str) -> bool:
        return agent_id in self._times

    def seed(self, agent_id: str, accepted_at: list[float]) -> None:
        if agent_id not in self._times:
            self._times[agent_id] = deque(sorted(accepted_at))

    def reserve(self, agent_id: str, now: float, limit: int) -> float | None:
        """Take a slot at ``now``; or, when the window is full, the seconds until one frees."""
        q = self._times.setdefault(agent_id, deque())
        cutoff = now - WINDOW_SECONDS
        while q and q[0] <= cutoff:
            q.popleft()
        while len(q) > limit:  # the limit was lowered at runtime
            q.popleft()
        if len(q) >= limit:
            return max(0.001, q[0] + WINDOW_SECONDS - now)
        q.append(now)
        return None

    def release(self, agent_id: str, at: float) -> None:
        q = self._times.get(agent_id)
        if not q:
            return
        if q[-1] == at:
            q.pop()
        else:
            with contextlib.suppress(ValueError):
                q.remove(at)
