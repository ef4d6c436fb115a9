"""System probes: database round-trip and the capabilities this server advertises."""

from __future__ import annotations

import time
from typing import Any, Protocol

from opstage import __version__
from opstage.app.context import UnitContext

DEGRADED_LATENCY_MS = 250


class SystemContext(UnitContext, Protocol):
    """What the database probe uses beyond units of work (``AppContext`` is one; ADR 0010):
    the engine's name, which it reports."""

    db_kind: str


def version_info(ctx: UnitContext) -> dict[str, Any]:
    s = ctx.settings
    out: dict[str, Any] = {"version": s.version_override or __version__, "edition": "ce"}
    if s.commit:
        out["commit"] = s.commit
    if s.build_time:
        out["buildTime"] = s.build_time
    out["capabilities"] = capabilities(ctx)
    return out


def capabilities(ctx: UnitContext) -> dict[str, Any]:
    s = ctx.settings
    return {
        "longPoll": s.long_poll_enabled,
        "longPollMaxSeconds": s.long_poll_max_seconds if s.long_poll_enabled else 0,
    }


async def probe_database(ctx: SystemContext) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with ctx.reader() as uow:
            await uow.ping()
    except Exception:
        return {"status": "DOWN", "kind": ctx.db_kind, "latencyMs": None}
    latency = int((time.perf_counter() - started) * 1000)
    status = "DEGRADED" if latency > DEGRADED_LATENCY_MS else "UP"
    return {"status": status, "kind": ctx.db_kind, "latencyMs": latency}
